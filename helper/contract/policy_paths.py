"""Whether only root can change a file: it and every parent directory owned by root and not
writable by group or others (a sticky root-owned directory such as /tmp is accepted). The
helper refuses lanes.toml otherwise; the agent's `doctor` reports the same findings."""

from __future__ import annotations

import os
import stat
from pathlib import Path

ROOT_UID = 0


def policy_path_problems(path: str | Path, owner: int = ROOT_UID) -> list[tuple[str, str]]:
    """(path, what is wrong and the fix) for the file and each parent; empty when trusted."""
    file = Path(os.path.abspath(path))
    problems: list[tuple[str, str]] = []
    for p in (file, *file.parents):
        try:
            st = p.lstat()
        except OSError:
            continue  # a missing file is load_lanes's to report
        if stat.S_ISLNK(st.st_mode):
            problems.append((str(p), "is a symlink: the helper reads policy only from real files"))
            continue
        if st.st_uid != owner:
            problems.append((str(p), f"owned by uid {st.st_uid}, not root: run `chown root {p}`"))
        writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if writable and not sticky_dir:
            mode = stat.S_IMODE(st.st_mode)
            problems.append(
                (str(p), f"writable by group or others (mode {mode:04o}): run `chmod go-w {p}`")
            )
    return problems
