"""Runner version strings, purely: parse, order, and read one from a release file name."""

from __future__ import annotations

import re

VERSION_RE = re.compile(r"\d{1,6}\.\d{1,6}\.\d{1,6}")
FILENAME_VERSION_RE = re.compile(r"actions-runner-[a-z]+-[a-z0-9]+-(\d{1,6}\.\d{1,6}\.\d{1,6})\.")


def version_key(version: str) -> tuple[int, ...]:
    """`2.330.0` -> (2, 330, 0); anything else sorts lowest."""
    if not VERSION_RE.fullmatch(version):
        return ()
    return tuple(int(part) for part in version.split("."))


def version_of(filename: str) -> str | None:
    """The version in a release file name (`actions-runner-linux-x64-2.330.0.tar.gz`)."""
    match = FILENAME_VERSION_RE.match(filename)
    return match[1] if match else None
