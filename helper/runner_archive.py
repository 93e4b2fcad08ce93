"""A runner archive, verified and sanitised: the digest is checked on a private copy, and
only regular files, directories and in-tree links are extracted. Stdlib only: imported by the
runner-user steps (`runner_steps.py`, run as `python -I -S`) and by nothing that needs more.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tarfile
from typing import IO

MAX_ARCHIVE = 2 * 1024**3
# Registration state comes from config.sh only, never from an archive.
STATE_FILES = (".runner", ".credentials", ".credentials_rsaparams", ".env", ".path")
ARCHIVE_RECORD = ".launchplane-archive"
"""Written by `extract`: the digest of the cached archive this directory came from."""
FORBIDDEN_MEMBERS = frozenset({*STATE_FILES, ARCHIVE_RECORD})


class ChecksumMismatch(Exception):
    """The archive's bytes are not the ones the digest names."""

    def __init__(self, actual: str) -> None:
        super().__init__(f"checksum mismatch: archive is {actual}")
        self.actual = actual


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


def unpack(source: IO[bytes], staged: IO[bytes], sha256: str, target: str) -> int:
    """Copy `source` into the private file `staged` while hashing it, verify, and extract
    that copy (sanitised) into `target`: there is no window to swap the bytes. The number of
    members extracted; ChecksumMismatch, or UnsafeArchive (any archive that cannot be read
    counts as unsafe)."""
    actual = _copy_and_hash(source, staged.fileno())
    if actual != sha256:
        raise ChecksumMismatch(actual)
    staged.seek(0)
    try:
        with tarfile.open(fileobj=staged, mode="r:gz") as archive:
            members = safe_members(archive.getmembers())
            _extract(archive, target, members)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise UnsafeArchive(f"{exc.__class__.__name__}: {exc}") from None
    return len(members)
