"""Writing and removing the per-lane drop-in under the unit directory, never following links."""

from __future__ import annotations

import contextlib
import os

from helper.contract.dropin import DROPIN_NAME, dropin_dir_name
from helper.contract.errors import LaneRefused
from helper.contract.identifiers import Finding
from helper.contract.safefs import open_or_make_dir, remove_file, walk, write_atomic


def _unit_dir_missing(unit_dir: str) -> LaneRefused:
    return LaneRefused(
        f"{unit_dir} does not exist",
        [Finding("unit_dir_missing", "unit_dir", f"{unit_dir} does not exist")],
    )


def write_dropin(unit_dir: str, lane_name: str, text: str) -> str:
    """Atomically write <unit_dir>/launchplane-runner@<lane>.service.d/50-lane.conf."""
    dirname = dropin_dir_name(lane_name)
    with walk(unit_dir, "unit_dir") as (unit_fd, _):
        if unit_fd is None:
            raise _unit_dir_missing(unit_dir)
        fd = open_or_make_dir(unit_fd, dirname, "dropin_dir", f"{unit_dir}/{dirname}")
        try:
            write_atomic(fd, DROPIN_NAME, text.encode("utf-8"), 0o644)
        finally:
            os.close(fd)
        os.fsync(unit_fd)
    return f"{unit_dir}/{dirname}/{DROPIN_NAME}"


def remove_dropin(unit_dir: str, lane_name: str) -> bool:
    """Remove our drop-in and its directory when that is left empty; False if already gone."""
    dirname = dropin_dir_name(lane_name)
    with walk(unit_dir, "unit_dir") as (unit_fd, _):
        if unit_fd is None:
            return False
    with walk(f"{unit_dir}/{dirname}", "dropin_dir") as (fd, _):
        if fd is None:
            return False
        removed = remove_file(fd, DROPIN_NAME)
    with walk(unit_dir, "unit_dir") as (unit_fd, _):
        if unit_fd is not None:
            with contextlib.suppress(OSError):  # not empty: someone else's files stay
                os.rmdir(dirname, dir_fd=unit_fd)
                os.fsync(unit_fd)
    return removed
