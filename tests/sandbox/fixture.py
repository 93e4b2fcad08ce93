"""Python face of ``tests/sandbox/sandbox.sh``: a throwaway container with a real systemd.

Every method shells out to the script (see docs/sandbox.md); nothing here talks to
systemd-nspawn directly. All calls are bounded in time.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().with_name("sandbox.sh")

PREPARE_TIMEOUT = 1800.0
WHEELS_TIMEOUT = 900.0
EXEC_TIMEOUT = 120.0


class SandboxError(RuntimeError):
    """A sandbox operation failed; ``output`` holds what the script or command printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(f"{message}\n{output}".rstrip())
        self.output = output


class ExecError(SandboxError):
    """A command inside the container exited non-zero."""

    def __init__(self, argv: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        self.argv = list(argv)
        self.result = result
        super().__init__(
            f"in-container command failed with exit code {result.returncode}: "
            f"{shlex.join(self.argv)}",
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}",
        )


@dataclass(frozen=True)
class Bind:
    """A host path shown inside the container.

    ``mode`` is ``"ro"`` (read-only bind), ``"rw"`` (writable bind: writes reach the host)
    or ``"overlay"`` (writable view whose writes vanish with the container).
    """

    host: Path
    container: str
    mode: str = "ro"

    def args(self) -> list[str]:
        option = {"ro": "--bind-ro", "rw": "--bind", "overlay": "--overlay"}.get(self.mode)
        if option is None:
            raise ValueError(f"bind mode must be ro, rw or overlay, not {self.mode!r}")
        return [option, f"{self.host}:{self.container}"]


def _script(
    *args: str,
    timeout: float,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            env=dict(env) if env is not None else None,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode()
        what = " ".join(args[:2])
        raise SandboxError(f"sandbox.sh {what} timed out after {timeout}s", out) from exc


def _checked(*args: str, timeout: float) -> str:
    result = _script(*args, timeout=timeout)
    if result.returncode != 0:
        raise SandboxError(
            f"sandbox.sh {shlex.join(args)} failed (exit {result.returncode})",
            result.stderr + result.stdout,
        )
    return result.stdout


def prepare(timeout: float = PREPARE_TIMEOUT) -> Path:
    """Install the host tools and build (or reuse) the cached rootfs; return its path."""
    return Path(_checked("prepare", timeout=timeout).strip().splitlines()[-1])


def prepare_wheels(
    requirements: Path, outdir: Path, *pip_args: str, timeout: float = WHEELS_TIMEOUT
) -> None:
    """Download wheels for the container's Python (CPython 3.11, glibc 2.36, x86_64)."""
    _checked("prepare-wheels", str(requirements), str(outdir), "--", *pip_args, timeout=timeout)


class Sandbox:
    """One named container: ``up()``, run things inside, ``down()``.

    The machine name is also the container's hostname.
    """

    def __init__(
        self,
        name: str,
        binds: Sequence[Bind] = (),
        *,
        boot_timeout: int = 60,
        stop_timeout: int = 30,
    ) -> None:
        self.name = name
        self.binds = tuple(binds)
        self.boot_timeout = boot_timeout
        self.stop_timeout = stop_timeout

    # ------------------------------------------------------------------ lifecycle

    def up(self) -> None:
        """Boot; returns once ``systemctl is-system-running`` says running or degraded."""
        args = ["up", self.name, "--timeout", str(self.boot_timeout)]
        for bind in self.binds:
            args += bind.args()
        _checked(*args, timeout=self.boot_timeout + 30)

    def down(self) -> str:
        """Stop and clean up; raises SandboxError listing anything left behind.

        Returns what the script reported (for example whether it had to SIGKILL).
        """
        result = _script(
            "down", self.name, "--timeout", str(self.stop_timeout), timeout=self.stop_timeout + 60
        )
        if result.returncode != 0:
            raise SandboxError(
                f"sandbox.sh down {self.name} failed (exit {result.returncode})", result.stderr
            )
        return result.stderr

    def verify_gone(self) -> None:
        """Raise SandboxError unless no process, mount, cgroup or state of this name is left."""
        _checked("verify", self.name, timeout=60)

    def is_up(self) -> bool:
        return _script("status", self.name, timeout=30).returncode == 0

    def status(self) -> str:
        return _script("status", self.name, timeout=30).stdout.strip()

    @property
    def state_dir(self) -> Path:
        return Path(os.environ.get("LP_SANDBOX_STATE", "/run/launchplane-sandbox")) / self.name

    @property
    def leader_pid(self) -> int:
        """Host PID of the container's PID 1 (its files: /proc/PID/root/...)."""
        return int((self.state_dir / "leader.pid").read_text().strip())

    @property
    def nspawn_pid(self) -> int:
        return int((self.state_dir / "nspawn.pid").read_text().strip())

    @property
    def boot_ms(self) -> int:
        return int((self.state_dir / "boot.ms").read_text().strip())

    @property
    def bus_address(self) -> str:
        """The container's system bus, reachable from the host."""
        return f"unix:path=/proc/{self.leader_pid}/root/run/dbus/system_bus_socket"

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = (self.state_dir / "nspawn.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Sandbox:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # ------------------------------------------------------------------ running things

    def exec(
        self,
        *argv: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = EXEC_TIMEOUT,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ARGV inside as root with a clean environment (PATH, HOME, LANG only + env).

        Raises ExecError on a non-zero exit when ``check`` is true.
        """
        if not argv:
            raise ValueError("no command given")
        opts: list[str] = []
        if cwd is not None:
            opts += ["--cwd", cwd]
        for key, value in (env or {}).items():
            opts += ["--env", f"{key}={value}"]
        result = _script("exec", self.name, *opts, "--", *argv, timeout=timeout, input_text=input)
        if check and result.returncode != 0:
            raise ExecError(argv, result)
        return result

    def sh(
        self,
        script: str,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = EXEC_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run a POSIX shell script inside (``sh -euc SCRIPT sh ARGS...``)."""
        return self.exec(
            "sh", "-euc", script, "sh", *args, input=input, check=check, timeout=timeout
        )

    def python(
        self,
        code: str,
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = EXEC_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run Python code with the container's Debian ``/usr/bin/python3``."""
        return self.exec("/usr/bin/python3", "-c", code, input=input, check=check, timeout=timeout)

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.exec("systemctl", "--no-pager", *args, check=check)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show UNIT -p P...`` as a dict."""
        args = ["show", unit]
        for prop in properties:
            args += ["-p", prop]
        out = self.systemctl(*args).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def write_file(self, path: str, content: str, mode: str = "0644") -> None:
        """Write CONTENT to PATH inside (parents created)."""
        self.sh('mkdir -p "$(dirname "$1")"; cat >"$1"; chmod "$2" "$1"', path, mode, input=content)

    def read_file(self, path: str) -> str:
        return self.exec("cat", "--", path).stdout

    def copy_in(self, host_path: Path, container_dir: str, timeout: float = 300) -> None:
        """Copy a host file or directory into CONTAINER_DIR (created if missing)."""
        _checked("cp-in", self.name, str(host_path), container_dir, timeout=timeout)

    def copy_out(self, container_path: str, host_dir: Path, timeout: float = 300) -> None:
        """Copy a file or directory from inside into HOST_DIR (created if missing)."""
        _checked("cp-out", self.name, container_path, str(host_dir), timeout=timeout)


@contextmanager
def running(name: str, binds: Sequence[Bind] = (), **kwargs: int) -> Iterator[Sandbox]:
    """``with running("x") as sb: ...`` — up, yield, always down (verified)."""
    box = Sandbox(name, binds, **kwargs)
    box.up()
    try:
        yield box
    finally:
        box.down()
