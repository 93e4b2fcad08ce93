"""Runner-user step: remove one lane directory, never following a symlink (stdlib only).

    runner_remove.py REGISTRATION_ROOT LANE UID

Run by systemd as the lane's service user (a transient unit started by the helper's
`remove-runner-directory` verb), so that neither the helper's empty capability set nor its
`ProtectProc=invisible` view of /proc limits what is checked and removed. Before anything is
removed it checks, again and from its own view:

* every component of REGISTRATION_ROOT/LANE is a real directory (opened with `O_NOFOLLOW`);
* the lane directory is owned by UID and is on the registration root's file system, and no
  file system is mounted at or below it;
* `.runner` is absent, or a regular file whose `agentName` is LANE;
* no process this user can inspect has its cwd, root, executable, an open file or a mapped
  file at or below the directory (processes of the service user are all inspectable; one that
  is not makes the step refuse).

Removal walks directory descriptors (`openat` with `O_NOFOLLOW|O_DIRECTORY`, `unlinkat`):
symlinks are unlinked, never followed; nothing on another file system is entered; directories
the user owns but cannot write (a Go module cache is 0555) are made writable first.

Exit codes: 0 removed (or already absent), 64 usage, 66 unsafe (symlink, not a directory,
owner, mount or file system), 67 in use or registered to another runner, 74 removal failed
part way (see the journal).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import sys
from collections.abc import Iterator

if not __package__:  # run as a script (`python -I -S`): its own package, after the stdlib
    sys.path.append(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from helper.runner_common import DIR_FLAGS, EXIT_UNSAFE, EXIT_USAGE, LANE_RE, PATH_RE, say

EXIT_IN_USE = 67
EXIT_FAILED = 74

MAX_RUNNER_FILE = 64 * 1024
MAX_REPORTED = 20


class Unsafe(Exception):
    pass


class InUse(Exception):
    pass


def open_dir_path(path: str) -> int:
    """Open `path` from `/`, one component at a time, never following a symlink."""
    parts = [p for p in path.split("/") if p]
    if not path.startswith("/") or {".", ".."} & set(parts):
        raise Unsafe(f"{path} is not a normalised absolute path")
    fd = os.open("/", DIR_FLAGS)
    try:
        for part in parts:
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise Unsafe(
                    f"{path}: {part} is a symlink or not a directory ({exc.strerror})"
                ) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unescape_mount(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_inside(target: str, mountinfo: str) -> list[str]:
    """Pure: mount points at or below `target` in a /proc/self/mountinfo text."""
    out = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            point = _unescape_mount(fields[4])
            if point == target or point.startswith(target + "/"):
                out.append(point)
    return out


def under(path: str, target: str) -> bool:
    """Whether a path the kernel reported (maybe with ` (deleted)`) is at or below target."""
    path = path.removesuffix(" (deleted)")
    return path == target or path.startswith(target + "/")


def _links(pid: str) -> Iterator[tuple[str, str]]:
    """(what, path) for a process's cwd, root, exe, open files and mapped files.
    PermissionError propagates (the caller decides); a vanished process yields nothing."""
    base = f"/proc/{pid}"
    for name in ("cwd", "root", "exe"):
        try:
            yield name, os.readlink(f"{base}/{name}")
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone, or a kernel thread without an executable
    try:
        fds = os.listdir(f"{base}/fd")
    except (FileNotFoundError, ProcessLookupError):
        fds = []
    for fd in fds:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            yield f"fd {fd}", os.readlink(f"{base}/fd/{fd}")
    try:
        with open(f"{base}/maps", encoding="utf-8", errors="surrogateescape") as maps:
            for line in maps:
                parts = line.rstrip("\n").split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    yield "mapped file", parts[5]
    except (FileNotFoundError, ProcessLookupError):
        pass


def processes_using(target: str, uid: int) -> tuple[list[str], int]:
    """Processes (other than this one) with anything at or below target, and the number of
    processes of other users that could not be inspected. An uninspectable process of `uid`
    (the service user) is reported as a user: the step fails closed on what it owns."""
    users: list[str] = []
    skipped = 0
    me = str(os.getpid())
    for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
        if pid == me:
            continue
        try:
            owner = os.stat(f"/proc/{pid}").st_uid
        except (FileNotFoundError, ProcessLookupError):
            continue
        try:
            for what, path in _links(pid):
                if under(path, target):
                    users.append(f"pid {pid} (uid {owner}): {what} {path}")
                    break
        except PermissionError:
            if owner == uid and uid != 0:
                users.append(f"pid {pid} (uid {owner}): cannot be inspected")
            else:
                skipped += 1
        except OSError:
            skipped += 1
    return users, skipped


def check_runner_file(lane_fd: int, lane: str) -> None:
    try:
        fd = os.open(".runner", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=lane_fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InUse(f".runner cannot be read safely ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise InUse(".runner is not a regular file")
        data = handle.read(MAX_RUNNER_FILE + 1)
    try:
        settings = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InUse(".runner is not valid JSON: registered to something else?") from None
    name = settings.get("agentName") if isinstance(settings, dict) else None
    if name != lane:
        raise InUse(f".runner names runner {name!r}, not {lane!r}")


def _make_writable(fd: int, uid: int) -> None:
    st = os.fstat(fd)
    if st.st_uid == uid and (st.st_mode & 0o700) != 0o700:
        os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)


def clear_tree(top_fd: int, uid: int, dev: int) -> None:
    """Remove everything inside the directory `top_fd`, depth first, through descriptors.
    Symlinks are unlinked, never followed; another file system is never entered."""
    _make_writable(top_fd, uid)
    # (directory fd, its name in the parent, entries still to remove)
    frames: list[tuple[int, str, list[str]]] = [(top_fd, "", sorted(os.listdir(top_fd)))]
    try:
        while frames:
            fd, dirname, names = frames[-1]
            if not names:
                frames.pop()
                if frames:  # emptied: close it and remove it from its parent
                    os.close(fd)
                    os.rmdir(dirname, dir_fd=frames[-1][0])
                continue
            name = names.pop()
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=fd)
                continue
            if st.st_dev != dev:
                raise Unsafe(f"{name} is on another file system: not entered")
            child = os.open(name, DIR_FLAGS, dir_fd=fd)
            frames.append((child, name, []))
            if os.fstat(child).st_ino != st.st_ino:
                raise Unsafe(f"{name} changed while it was being removed")
            _make_writable(child, uid)
            frames[-1][2].extend(sorted(os.listdir(child)))
    finally:
        for fd, _, _ in frames[1:]:
            os.close(fd)


def remove(root: str, lane: str, uid: int) -> int:
    target = f"{root}/{lane}"
    root_fd = open_dir_path(root)
    try:
        root_dev = os.fstat(root_fd).st_dev
        try:
            st = os.stat(lane, dir_fd=root_fd, follow_symlinks=False)
        except FileNotFoundError:
            say(f"{target} does not exist: nothing to remove")
            return 0
        if not stat.S_ISDIR(st.st_mode):
            raise Unsafe(f"{target} is a symlink or not a directory")
        lane_fd = os.open(lane, DIR_FLAGS, dir_fd=root_fd)
        try:
            lst = os.fstat(lane_fd)
            if (lst.st_dev, lst.st_ino) != (st.st_dev, st.st_ino):
                raise Unsafe(f"{target} changed while it was opened")
            if lst.st_uid != uid:
                raise Unsafe(f"{target} is owned by uid {lst.st_uid}, not {uid}")
            if lst.st_dev != root_dev:
                raise Unsafe(f"{target} is on another file system than {root}")
            with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as mi:
                mounted = mounts_inside(target, mi.read())
            if mounted:
                raise Unsafe(f"file systems are mounted inside: {', '.join(mounted[:5])}")
            check_runner_file(lane_fd, lane)
            users, skipped = processes_using(target, uid)
            if users:
                shown = "; ".join(users[:MAX_REPORTED])
                raise InUse(f"{len(users)} process(es) use {target}: {shown}")
            say(
                f"no inspectable process uses {target} "
                f"({skipped} processes of other users could not be inspected)"
            )
            clear_tree(lane_fd, uid, lst.st_dev)
        finally:
            os.close(lane_fd)
        os.rmdir(lane, dir_fd=root_fd)
        os.fsync(root_fd)
    finally:
        os.close(root_fd)
    say(f"removed {target}")
    return 0


def valid_args(args: list[str]) -> bool:
    """REGISTRATION_ROOT (normalised, absolute, unit-safe), LANE (a lane name), UID (digits)."""
    if len(args) != 3:
        return False
    root, lane, uid = args
    return bool(
        PATH_RE.fullmatch(root)
        and not {".", ".."} & set(root.split("/"))
        and "//" not in root
        and not root.endswith("/")
        and LANE_RE.fullmatch(lane)
        and lane.strip(".")
        and uid.isdigit()
    )


def main(argv: list[str]) -> int:
    args = argv[1:]
    if not valid_args(args):
        say("usage: runner_remove.py REGISTRATION_ROOT LANE UID")
        return EXIT_USAGE
    root, lane, uid = args
    try:
        return remove(root, lane, int(uid))
    except Unsafe as exc:
        say(f"refused: {exc}")
        return EXIT_UNSAFE
    except InUse as exc:
        say(f"refused: {exc}")
        return EXIT_IN_USE
    except OSError as exc:
        say(f"removal failed part way: {exc.__class__.__name__}: {exc}")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
