"""File-system access without following symlinks: walk, read small files, write atomically.

Every path the helper touches is opened component by component from `/` with
`O_NOFOLLOW | O_DIRECTORY` relative to the parent's descriptor, so a symlink anywhere on
the way is refused rather than resolved, and a swap after a check cannot redirect a write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from helper.contract.errors import LaneRefused
from helper.contract.identifiers import Finding

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_SMALL_FILE = 64 * 1024


@dataclass(frozen=True)
class DirInfo:
    """One directory on a walked path."""

    path: str
    uid: int
    mode: int


def _symlink(field: str, path: str) -> LaneRefused:
    return LaneRefused(
        f"{path} is a symlink or not a directory",
        [Finding("symlinked_path", field, f"{path} is a symlink or not a directory")],
    )


def _components(path: str) -> list[str]:
    if not path.startswith("/") or "\x00" in path:
        raise ValueError("absolute path without NUL expected")
    return [part for part in path.split("/") if part]


def _open_child(parent: int, name: str, field: str, path: str) -> int | None:
    """Open directory `name` below `parent`; None when it does not exist."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        raise _symlink(field, path)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _symlink(field, path) from None
        raise


@contextlib.contextmanager
def walk(path: str, field: str) -> Iterator[tuple[int | None, list[DirInfo]]]:
    """Open `path` without following symlinks. Yields (fd of `path` or None when a component
    is missing, info for every existing directory from `/` down). Symlinks raise LaneRefused."""
    fds: list[int] = [os.open("/", _DIR_FLAGS)]
    infos: list[DirInfo] = []
    current = ""
    try:
        st = os.fstat(fds[0])
        infos.append(DirInfo("/", st.st_uid, st.st_mode))
        found = True
        for part in _components(path):
            current = f"{current}/{part}"
            fd = _open_child(fds[-1], part, field, current)
            if fd is None:
                found = False
                break
            fds.append(fd)
            st = os.fstat(fd)
            infos.append(DirInfo(current, st.st_uid, st.st_mode))
        yield (fds[-1] if found else None), infos
    finally:
        for fd in fds:
            os.close(fd)


def secure_dir_findings(
    infos: list[DirInfo], field: str, owners: frozenset[int], last_owners: frozenset[int]
) -> list[Finding]:
    """Pure: every directory on the path is owned by `owners` (the last by `last_owners`) and
    not writable by group or others, unless it is a sticky directory (like /tmp) on the way."""
    out: list[Finding] = []
    for i, info in enumerate(infos):
        last = i == len(infos) - 1
        allowed = last_owners if last else owners
        if info.uid not in allowed:
            out.append(
                Finding("unsafe_path_owner", field, f"{info.path} is owned by uid {info.uid}")
            )
        writable = info.mode & (stat.S_IWGRP | stat.S_IWOTH)
        if writable and (last or not info.mode & stat.S_ISVTX):
            out.append(
                Finding(
                    "unsafe_path_mode",
                    field,
                    f"{info.path} is writable by group or others ({stat.filemode(info.mode)})",
                )
            )
    return out


@dataclass(frozen=True)
class FileRead:
    """A small file read through a directory descriptor."""

    state: str  # absent | regular | not_regular | unreadable | too_large
    data: bytes = b""
    uid: int | None = None
    mode: int | None = None


def read_small(dir_fd: int, name: str, limit: int = MAX_SMALL_FILE) -> FileRead:
    """Read `name` in `dir_fd` with O_NOFOLLOW; symlinks and non-regular files are reported,
    never followed or opened for reading."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd
        )
    except FileNotFoundError:
        return FileRead("absent")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return FileRead("not_regular")
        return FileRead("unreadable")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return FileRead("not_regular", uid=st.st_uid, mode=st.st_mode)
        if st.st_size > limit:
            return FileRead("too_large", uid=st.st_uid, mode=st.st_mode)
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                return FileRead("too_large", uid=st.st_uid, mode=st.st_mode)
        return FileRead("regular", b"".join(chunks), st.st_uid, st.st_mode)
    except OSError:
        return FileRead("unreadable")
    finally:
        os.close(fd)


def entry_kind(dir_fd: int, name: str) -> str:
    """absent | file | dir | symlink | other, from lstat through the directory descriptor."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return "absent"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "other"


def open_or_make_dir(parent_fd: int, name: str, field: str, path: str, mode: int = 0o755) -> int:
    """Open directory `name` below `parent_fd`, creating it with exactly `mode` (whatever the
    umask) if absent; never follows symlinks."""
    created = True
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        created = False
    fd = _open_child(parent_fd, name, field, path)
    if fd is None:
        raise FileNotFoundError(path)
    if created:
        os.fchmod(fd, mode)
    return fd


def write_atomic(dir_fd: int, name: str, data: bytes, mode: int = 0o644) -> None:
    """temp (O_EXCL|O_NOFOLLOW, same dir) -> write -> fsync -> rename -> fsync the directory."""
    tmp = f".{name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(
        tmp,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        mode,
        dir_fd=dir_fd,
    )
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)


def replace_file(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """`write_atomic` by path: the parent directory is opened once, without following a link."""
    parent, name = os.path.split(os.fspath(path))
    dir_fd = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        write_atomic(dir_fd, name, data, mode)
    finally:
        os.close(dir_fd)


def remove_file(dir_fd: int, name: str) -> bool:
    """Unlink `name` (never following); False when it was already gone. Fsyncs the directory."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    os.fsync(dir_fd)
    return True
