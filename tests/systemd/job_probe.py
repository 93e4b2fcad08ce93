"""Run as a job on a lane (tests/systemd/test_job_capabilities.py): which calls that debuggers,
profilers, browser sandboxes and rootless tools make does the lane let through? Prints one line,
`PROBE {json}`. Stdlib only; x86_64 syscall numbers."""

import ctypes
import errno
import json
import os
import subprocess

libc = ctypes.CDLL(None, use_errno=True)


def result(rc: int) -> str:
    return "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")


def traceme() -> str:
    pid = os.fork()
    if pid == 0:
        rc = libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME: what gdb/strace's child does
        os._exit(0 if rc == 0 else ctypes.get_errno())
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return "ok" if code == 0 else errno.errorcode.get(code, str(code))


def shell(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return "ok" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


action = ctypes.c_uint32(0x7FFF0000)  # SECCOMP_RET_ALLOW
out = {
    "ptrace": traceme(),
    # a NULL attr: EFAULT once the call is let through, EPERM from the filter
    "perf_event_open": result(libc.syscall(298, None, 0, -1, -1, 0)),
    "seccomp": result(libc.syscall(317, 2, 0, ctypes.byref(action))),  # GET_ACTION_AVAIL
    "personality": result(libc.personality(0x0008)),  # PER_LINUX32; LockPersonality refuses
    "userns": shell("unshare", "--user", "--map-root-user", "true"),
    "userns_mount": shell(
        "unshare", "--user", "--map-root-user", "--mount", "mount", "-t", "tmpfs", "none", "/mnt"
    ),
}
libc.personality(0)
print("PROBE " + json.dumps(out, sort_keys=True))
