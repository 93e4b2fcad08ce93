"""The helper's append-only JSONL audit log: one redacted line per request; a request that may
change the host has its line fsynced before it is answered (docs/helper.md, "Audit log")."""

from __future__ import annotations

import json
import os
from typing import Any

from helper.contract.errors import AuditUnavailable
from helper.contract.redact import REDACTOR, Redactor

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
# Fields whose values were validated before they were recorded (a verb from the fixed set, a
# lane name matching the lane regex, hex digests, a timestamp) are kept verbatim: a peer must
# not be able to blank them from the trail by sending one of them as a "token". Every other
# value goes through the redactor.
VERBATIM = frozenset({"time", "verb", "lane", "unit_hash_before", "unit_hash_after", "event"})


def redact_entry(entry: dict[str, Any], redactor: Redactor = REDACTOR) -> dict[str, Any]:
    """A copy of an audit or log entry with every non-verbatim value redacted."""
    return {
        redactor.redact(str(key)): value if key in VERBATIM else redactor.redact_obj(value)
        for key, value in entry.items()
    }


class AuditLog:
    """Opened before a request is served (a log that cannot be opened refuses the request),
    appended to once when the request is answered."""

    def __init__(self, path: str) -> None:
        self.path = path

    def open(self) -> AuditEntry:
        try:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o750, exist_ok=True)
            fd = os.open(self.path, _FLAGS, 0o640)
        except OSError as exc:
            raise AuditUnavailable(f"cannot open {self.path}: {exc.strerror}") from None
        return AuditEntry(fd)

    def sync(self) -> None:
        """fsync the log (the helper does it once on its way out, for the lines of read-only
        requests it wrote without one); a log that cannot be opened is left as it is."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AuditEntry:
    """One pending line; `write` appends it (redacted) and closes the file."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def write(
        self, entry: dict[str, Any], redactor: Redactor = REDACTOR, *, durable: bool = True
    ) -> None:
        """Append the line; with `durable`, fsync it (and every line before it) first."""
        if self._fd is None:
            return
        line = json.dumps(redact_entry(entry, redactor), sort_keys=True, separators=(",", ":"))
        data = (line + "\n").encode("utf-8", "backslashreplace")
        try:
            os.write(self._fd, data)
            if durable:
                os.fsync(self._fd)
        finally:
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
