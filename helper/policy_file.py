"""The root helper obeys lanes.toml only when root alone can change it: the file and every
parent directory owned by root and not writable by group or others (a sticky, root-owned
directory such as /tmp is accepted: nobody else can replace what is in it)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from helper.contract.errors import ConfigError
from helper.contract.lanes import LanesFile, load_lanes
from helper.contract.policy_paths import ROOT_UID, policy_path_problems

__all__ = [
    "ROOT_UID",
    "TrustedLanes",
    "UntrustedPolicy",
    "load_trusted_lanes",
    "policy_path_problems",
]


class UntrustedPolicy(ConfigError):
    """lanes.toml, or a directory above it, could be changed by someone other than root."""

    code = "policy_untrusted"


def load_trusted_lanes(path: str | Path, owner: int = ROOT_UID) -> LanesFile:
    """load_lanes, refused with ConfigError when anyone but root could have changed the file."""
    _refuse_untrusted(path, owner)
    return load_lanes(path)


def _refuse_untrusted(path: str | Path, owner: int) -> None:
    problems = policy_path_problems(path, owner)
    if problems:
        raise UntrustedPolicy(
            str(path), problems, what="policy file: not trusted by the root helper"
        )


RACY_NS = 2_000_000_000
"""A file changed less than this long ago is parsed again on every call: file timestamps
come from a coarse clock, so a second same-size write within one tick would keep them equal."""

StatKey = tuple[int, int, int, int, int, int]


def _stat_key(path: str | Path) -> StatKey | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


class TrustedLanes:
    """`load_trusted_lanes`, parsed once per change of the file. Every call runs every check
    of `policy_path_problems` (owner, mode, symlinks of the file and each parent) before
    anything is returned; the parse is reused only while the file's device, inode, size, mode,
    mtime and ctime are all unchanged and its last change is older than RACY_NS."""

    def __init__(self, path: str | Path, owner: int = ROOT_UID, racy_ns: int = RACY_NS) -> None:
        self.path = path
        self.owner = owner
        self.racy_ns = racy_ns
        self.parses = 0
        self._key: StatKey | None = None
        self._lanes: LanesFile | None = None

    def load(self) -> LanesFile:
        _refuse_untrusted(self.path, self.owner)
        key = _stat_key(self.path)  # before the read: a change after it makes the next differ
        if key is not None and key == self._key and self._lanes is not None:
            return self._lanes
        self._key, self._lanes = None, None
        lanes = load_lanes(self.path)
        self.parses += 1
        if key is not None and time.time_ns() - max(key[3], key[4]) > self.racy_ns:
            self._key, self._lanes = key, lanes
        return lanes
