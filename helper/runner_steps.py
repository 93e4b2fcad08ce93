"""Runner-user steps: run by systemd as the lane's service user, stdlib only (`python -I -S`).

    runner_steps.py extract    REGISTRATION_ROOT LANE SHA256   (tarball on stdin)
    runner_steps.py register   RUNNER_DIR URL NAME LABELS ARCHIVE SHA256 [GROUP]  (token on stdin)
    runner_steps.py unregister RUNNER_DIR                      (no token: local cleanup)

The helper starts these as transient units with a fixed argv derived from lanes.toml;
secrets arrive on stdin only and reach config.sh only as ACTIONS_RUNNER_INPUT_TOKEN.
`register` never runs code from RUNNER_DIR (a job may have rewritten it): it unpacks the
verified cached ARCHIVE into the step's private /tmp, runs that pristine config.sh, and
moves only the registration files it wrote into RUNNER_DIR.
Nothing here prints a token. Exit codes: 0 ok, 64 usage, 65 checksum mismatch,
66 unsafe archive, 67 wrong state.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from typing import IO

if not __package__:  # run as a script (`python -I -S`): its own package, after the stdlib
    sys.path.append(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from helper.runner_archive import (
    ARCHIVE_RECORD,
    STATE_FILES,
    ChecksumMismatch,
    UnsafeArchive,
    unpack,
)
from helper.runner_common import DIR_FLAGS, EXIT_UNSAFE, EXIT_USAGE, LANE_RE, PATH_RE, say

EXIT_CHECKSUM = 65
EXIT_STATE = 67

SHA_RE = re.compile(r"[0-9a-f]{64}")
# A repository (`<web>/<owner>/<name>`) or an organization (`<web>/<login>`) URL.
URL_RE = re.compile(r"https?://[A-Za-z0-9.:-]{1,260}/[A-Za-z0-9._-]{1,39}(/[A-Za-z0-9._-]{1,100})?")
GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
LABELS_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,255}(,[A-Za-z0-9][A-Za-z0-9._:/+-]{0,255})*"
)
TOKEN_RE = re.compile(rb"[!#-\[\]-~]{16,1024}")
STAGING = ".launchplane-runner.tar.gz.partial"
PATH_ENV = "/usr/local/bin:/usr/bin:/bin"


def _open_lane_dir(root: str, lane: str) -> int:
    root_fd = os.open(root, DIR_FLAGS)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(lane, 0o755, dir_fd=root_fd)
        return os.open(lane, DIR_FLAGS, dir_fd=root_fd)
    finally:
        os.close(root_fd)


def _unpack(source: IO[bytes], staged: IO[bytes], sha256: str, target: str) -> int:
    """`runner_archive.unpack` as this step's exit code (0, 65 or 66), said on stdout."""
    try:
        count = unpack(source, staged, sha256, target)
    except ChecksumMismatch as exc:
        say(str(exc))
        return EXIT_CHECKSUM
    except UnsafeArchive as exc:
        say(f"refused archive: {exc}")
        return EXIT_UNSAFE
    say(f"extracted {count} members into {target}")
    return 0


def _write_new(dir_fd: int, name: str, data: bytes, mode: int) -> None:
    """Replace `name` in the directory by a new file (a link in its place is removed)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, mode, dir_fd=dir_fd)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def extract(root: str, lane: str, sha256: str, stdin: IO[bytes]) -> int:
    """Unpack the verified tarball on stdin into ROOT/LANE and record its digest there."""
    if not (PATH_RE.fullmatch(root) and LANE_RE.fullmatch(lane) and SHA_RE.fullmatch(sha256)):
        return EXIT_USAGE
    try:
        lane_fd = _open_lane_dir(root, lane)
    except OSError as exc:
        say(f"cannot open {root}/{lane} as a directory (symlink?): {exc.strerror}")
        return EXIT_UNSAFE
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(STAGING, dir_fd=lane_fd)
        fd = os.open(
            STAGING,
            os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=lane_fd,
        )
        try:
            with os.fdopen(fd, "w+b") as staged:
                status = _unpack(stdin, staged, sha256, f"{root}/{lane}")
            if status == 0:
                _write_new(lane_fd, ARCHIVE_RECORD, sha256.encode() + b"\n", 0o644)
            return status
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(STAGING, dir_fd=lane_fd)
    finally:
        os.close(lane_fd)


def _read_token(stdin: IO[bytes]) -> str | None:
    raw = stdin.read(1100).strip()
    return raw.decode("ascii") if TOKEN_RE.fullmatch(raw) else None


def _config_sh(runner_dir: str) -> int | None:
    """0 when runner_dir/config.sh is a regular file; an exit code otherwise."""
    try:
        st = os.stat(f"{runner_dir}/config.sh", follow_symlinks=False)
    except FileNotFoundError:
        say("config.sh is missing: install the runner first")
        return EXIT_STATE
    if not stat.S_ISREG(st.st_mode):
        say("config.sh is not a regular file")
        return EXIT_UNSAFE
    return None


def _open_no_follow(path: str) -> int:
    """A file opened read-only without following a symlink in any component of `path`."""
    parts = [part for part in path.split("/") if part]
    fd = os.open("/", DIR_FLAGS)
    try:
        for part in parts[:-1]:
            child = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)


def _adopt_state(code_dir: str, runner_dir: str) -> int:
    """Move the registration files config.sh wrote in `code_dir` into `runner_dir`."""
    dir_fd = os.open(runner_dir, DIR_FLAGS)
    try:
        for name in STATE_FILES:
            try:
                st = os.lstat(f"{code_dir}/{name}")
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                say(f"config.sh left {name} as something other than a file")
                return EXIT_UNSAFE
            with open(f"{code_dir}/{name}", "rb") as src:
                _write_new(dir_fd, name, src.read(), stat.S_IMODE(st.st_mode) & 0o644)
    finally:
        os.close(dir_fd)
    return 0


def register(
    args: tuple[str, str, str, str, str, str], stdin: IO[bytes], group: str | None = None
) -> int:
    """config.sh from a pristine copy of the verified archive, in this step's private /tmp;
    then only the registration files are moved into RUNNER_DIR. `args`: RUNNER_DIR URL NAME
    LABELS ARCHIVE SHA256; `group`: an organization runner group (`--runnergroup`)."""
    runner_dir, url, name, labels, archive, sha256 = args
    ok = PATH_RE.fullmatch(runner_dir) and URL_RE.fullmatch(url) and LANE_RE.fullmatch(name)
    ok = ok and PATH_RE.fullmatch(archive) and SHA_RE.fullmatch(sha256)
    if group is not None and not GROUP_RE.fullmatch(group):
        return EXIT_USAGE
    if not ok or not LABELS_RE.fullmatch(labels):
        return EXIT_USAGE
    token = _read_token(stdin)
    if token is None:
        say("no valid token on stdin")
        return EXIT_USAGE
    if os.path.lexists(f"{runner_dir}/.runner"):
        say(".runner exists: already registered")
        return EXIT_STATE
    staging = tempfile.mkdtemp(prefix="launchplane-register-")
    try:
        try:
            source = os.fdopen(_open_no_follow(archive), "rb")
        except OSError as exc:
            say(f"cannot open the cached archive {archive}: {exc.strerror}")
            return EXIT_UNSAFE
        code_dir = f"{staging}/runner"
        os.mkdir(code_dir, 0o700)
        with source, tempfile.TemporaryFile(dir=staging) as staged:
            status = _unpack(source, staged, sha256, code_dir)
        if status:
            return status
        problem = _config_sh(code_dir)
        if problem is not None:
            return problem
        say(f"registering {name} at {url} with the pristine runner {sha256[:12]}")
        flags = ["--unattended", "--url", url, "--name", name, "--labels", labels]
        flags += ["--work", "_work", "--replace", "--disableupdate"]
        flags += ["--runnergroup", group] if group is not None else []
        env = {"PATH": PATH_ENV, "HOME": runner_dir, "LANG": "C.UTF-8"}
        env["ACTIONS_RUNNER_INPUT_TOKEN"] = token
        sys.stdout.flush()
        done = subprocess.run(  # fixed argv, pristine code
            ["./config.sh", *flags], cwd=code_dir, env=env, stdin=subprocess.DEVNULL, check=False
        )
        if done.returncode != 0:
            return done.returncode
        return _adopt_state(code_dir, runner_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def unregister(runner_dir: str) -> int:
    """Forget the registration locally: delete the files config.sh wrote (never following a
    link; a directory in their place is refused). GitHub's side was deleted by the agent
    through the REST API, so no remove token and no runner code is involved."""
    if not PATH_RE.fullmatch(runner_dir):
        return EXIT_USAGE
    try:
        dir_fd = os.open(runner_dir, DIR_FLAGS)
    except OSError as exc:
        say(f"cannot open {runner_dir} as a directory (symlink?): {exc.strerror}")
        return EXIT_UNSAFE
    try:
        for name in STATE_FILES:  # the archive record stays: a later register needs it
            try:
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                continue
            except IsADirectoryError:
                say(f"{name} is a directory: not removed")
                return EXIT_UNSAFE
            say(f"removed {name}")
    finally:
        os.close(dir_fd)
    return 0


def main(argv: list[str]) -> int:
    stdin = sys.stdin.buffer
    match argv[1:]:
        case ["extract", root, lane, sha256]:
            return extract(root, lane, sha256, stdin)
        case ["register", runner_dir, url, name, labels, archive, sha256]:
            return register((runner_dir, url, name, labels, archive, sha256), stdin)
        case ["register", runner_dir, url, name, labels, archive, sha256, group]:
            return register((runner_dir, url, name, labels, archive, sha256), stdin, group)
        case ["unregister", runner_dir]:
            return unregister(runner_dir)
        case _:
            say(
                "usage: extract ROOT LANE SHA256 | "
                "register DIR URL NAME LABELS ARCHIVE SHA256 [GROUP] | unregister DIR"
            )
            return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main(sys.argv))
