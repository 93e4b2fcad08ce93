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
import copy
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from typing import IO

EXIT_USAGE = 64
EXIT_CHECKSUM = 65
EXIT_UNSAFE = 66
EXIT_STATE = 67

LANE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
SHA_RE = re.compile(r"[0-9a-f]{64}")
PATH_RE = re.compile(r"/[A-Za-z0-9._/@%+-]{1,4000}")
# A repository (`<web>/<owner>/<name>`) or an organization (`<web>/<login>`) URL.
URL_RE = re.compile(r"https?://[A-Za-z0-9.:-]{1,260}/[A-Za-z0-9._-]{1,39}(/[A-Za-z0-9._-]{1,100})?")
GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
LABELS_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,255}(,[A-Za-z0-9][A-Za-z0-9._:/+-]{0,255})*"
)
TOKEN_RE = re.compile(rb"[!#-\[\]-~]{16,1024}")
MAX_ARCHIVE = 2 * 1024**3
STAGING = ".launchplane-runner.tar.gz.partial"
# Registration state comes from config.sh only, never from an archive.
STATE_FILES = (".runner", ".credentials", ".credentials_rsaparams", ".env", ".path")
ARCHIVE_RECORD = ".launchplane-archive"
"""Written by `extract`: the digest of the cached archive this directory came from."""
FORBIDDEN_MEMBERS = frozenset({*STATE_FILES, ARCHIVE_RECORD})
PATH_ENV = "/usr/local/bin:/usr/bin:/bin"
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def say(message: str) -> None:
    print(f"launchplane-step: {message}", flush=True)


class UnsafeArchive(Exception):
    pass


def _normal_name(name: str) -> str:
    """The member's path relative to the target; refuses absolute paths and any `..`."""
    while name.startswith("./"):
        name = name[2:]
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or not parts or ".." in parts or "\x00" in name:
        raise UnsafeArchive(f"member {name!r} is absolute, empty or contains '..'")
    return "/".join(parts)


def _inside(base_dir: str, target: str) -> bool:
    """Whether a link target, relative to base_dir (both relative to the root), stays inside."""
    if target.startswith("/"):
        return False
    joined = (
        os.path.normpath(os.path.join(base_dir, target)) if base_dir else os.path.normpath(target)
    )
    return joined != ".." and not joined.startswith("../")


def safe_members(members: list[tarfile.TarInfo]) -> list[tarfile.TarInfo]:
    """Sanitised copies of the members, or UnsafeArchive. Works on every Python 3.11 (Debian
    12's has no tarfile data filter) and is stricter than the filter: regular files,
    directories and in-tree links only; nothing reached through a link; no registration
    state; no set-id, sticky or group/other-write bits; no ownership."""
    members = [m for m in members if not (m.isdir() and m.name.strip("./") == "")]
    names = {id(m): _normal_name(m.name) for m in members}
    links = {names[id(m)] for m in members if m.issym() or m.islnk()}
    files = {names[id(m)] for m in members if m.isreg()}
    out: list[tarfile.TarInfo] = []
    for member in members:
        name = names[id(member)]
        if name.split("/", 1)[0] in FORBIDDEN_MEMBERS:
            raise UnsafeArchive(f"member {name!r} is registration state")
        parts = name.split("/")
        if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
            raise UnsafeArchive(f"member {name!r} lies below a link")
        clean = copy.copy(member)
        clean.name = name
        clean.uid = clean.gid = 0
        clean.uname = clean.gname = ""
        if member.isreg():
            mode = (member.mode & 0o755) | 0o600
            clean.mode = mode if mode & 0o100 else mode & ~0o111
        elif member.isdir():
            clean.mode = 0o755
        elif member.issym():
            if not _inside(os.path.dirname(name), member.linkname):
                raise UnsafeArchive(f"symlink {name!r} points outside the runner directory")
        elif member.islnk():
            if _normal_name(member.linkname) not in files:
                raise UnsafeArchive(f"hard link {name!r} does not point at a file in the archive")
            clean.linkname = _normal_name(member.linkname)
        else:
            raise UnsafeArchive(f"member {name!r} is a device, FIFO or other special file")
        out.append(clean)
    return out


def _copy_and_hash(src: IO[bytes], dst_fd: int) -> str:
    digest = hashlib.sha256()
    total = 0
    while chunk := src.read(1 << 20):
        total += len(chunk)
        if total > MAX_ARCHIVE:
            raise ValueError("archive larger than 2 GiB")
        digest.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst_fd, view) :]
    return digest.hexdigest()


def _extract(archive: tarfile.TarFile, target: str, members: list[tarfile.TarInfo]) -> None:
    """Extract sanitised members; where tarfile has the `data` filter, it checks them again."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(target, members=members, filter="data")
    else:  # Debian 12's Python 3.11.2: safe_members() is the whole defence
        archive.extractall(target, members=members)  # noqa: S202 - sanitised


def _open_lane_dir(root: str, lane: str) -> int:
    root_fd = os.open(root, DIR_FLAGS)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(lane, 0o755, dir_fd=root_fd)
        return os.open(lane, DIR_FLAGS, dir_fd=root_fd)
    finally:
        os.close(root_fd)


def _unpack(source: IO[bytes], staged: IO[bytes], sha256: str, target: str) -> int:
    """Copy `source` into the private file `staged` while hashing it, verify, and extract
    that copy (sanitised) into `target`: there is no window to swap the bytes."""
    actual = _copy_and_hash(source, staged.fileno())
    if actual != sha256:
        say(f"checksum mismatch: archive is {actual}")
        return EXIT_CHECKSUM
    staged.seek(0)
    try:
        with tarfile.open(fileobj=staged, mode="r:gz") as archive:
            members = safe_members(archive.getmembers())
            _extract(archive, target, members)
    except (UnsafeArchive, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        say(f"refused archive: {exc.__class__.__name__}: {exc}")
        return EXIT_UNSAFE
    say(f"extracted {len(members)} members into {target}")
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
