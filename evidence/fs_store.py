"""The filesystem store (one host or a small site): one file per record, named by the hash of
its idempotency key, written atomically under an exclusive lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from agent.contracts import RunnerLaneMaintainerAuditRecord
from evidence.lanestate import merge
from evidence.store import LaneState, PutResult, RecordQuery, StoredRecord
from helper.contract.safefs import write_atomic

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def file_name(key: str) -> str:
    """Collision-safe and traversal-proof: the SHA-256 of the key, hex."""
    return hashlib.sha256(key.encode()).hexdigest() + ".json"


def encode(stored: StoredRecord) -> bytes:
    return json.dumps(
        {
            "digest": stored.digest,
            "stored_at": stored.stored_at.isoformat(),
            "token_id": stored.token_id,
            "record": json.loads(stored.record.model_dump_json()),
        },
        sort_keys=True,
    ).encode()


def decode(data: bytes) -> StoredRecord:
    raw = json.loads(data)
    return StoredRecord(
        record=RunnerLaneMaintainerAuditRecord.model_validate_json(json.dumps(raw["record"])),
        digest=raw["digest"],
        stored_at=datetime.fromisoformat(raw["stored_at"]),
        token_id=raw["token_id"],
    )


def matches(stored: StoredRecord, q: RecordQuery) -> bool:
    created = stored.record.created_at
    return (
        (q.lane is None or stored.lane == q.lane)
        and (q.host is None or stored.host == q.host)
        and (q.repository is None or stored.repository == q.repository)
        and (q.status is None or stored.record.status == q.status)
        and (q.since is None or created >= q.since)
        and (q.until is None or created < q.until)
        and (q.after is None or stored.sort_key < q.after)
    )


class FilesystemEvidenceStore:
    """<root>/records/<sha256(key)>.json; files are immutable, so parsed ones are cached."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        (self.root / "records").mkdir(mode=0o700, parents=True, exist_ok=True)
        self._cache: dict[str, StoredRecord] = {}
        self._cache_lock = threading.Lock()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[int]:
        """An flock on <root>/.lock (excludes other threads and processes), and the records
        directory opened without following a symlink."""
        lock = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            dir_fd = os.open(self.root / "records", _DIR_FLAGS)
            try:
                yield dir_fd
            finally:
                os.close(dir_fd)
        finally:
            os.close(lock)

    def _read(self, name: str) -> StoredRecord | None:
        with self._cache_lock:
            if name in self._cache:
                return self._cache[name]
        try:
            fd = os.open(self.root / "records" / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as fh:
            stored = decode(fh.read())
        with self._cache_lock:
            self._cache[name] = stored
        return stored

    def put(self, stored: StoredRecord) -> PutResult:
        name = file_name(stored.record_id)
        with self._exclusive() as dir_fd:
            existing = self._read(name)
            if existing is None:
                write_atomic(dir_fd, name, encode(stored), mode=0o600)
                return PutResult("created", stored)
        same = existing.digest == stored.digest
        return PutResult("replay" if same else "conflict", existing)

    def get(self, record_id: str) -> StoredRecord | None:
        return self._read(file_name(record_id))

    def _all(self) -> list[StoredRecord]:
        out = []
        with os.scandir(self.root / "records") as entries:
            names = [e.name for e in entries if e.name.endswith(".json") and e.name[0] != "."]
        for name in names:
            stored = self._read(name)
            if stored is not None:
                out.append(stored)
        return out

    def query(self, query: RecordQuery) -> list[StoredRecord]:
        found = [s for s in self._all() if matches(s, query)]
        found.sort(key=lambda s: s.sort_key, reverse=True)
        return found[: query.limit]

    def lanes(
        self,
        host: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[LaneState]:
        states: dict[tuple[str, str], LaneState] = {}
        for stored in self._all():
            key = (stored.host, stored.lane)
            if (host is None or stored.host == host) and (after is None or key > after):
                states[key] = merge(states.get(key), stored)
        return [states[k] for k in sorted(states)[:limit]]  # code points: PostgreSQL's "C"

    def count(self) -> int:
        return len(self._all())

    def close(self) -> None:
        with self._cache_lock:
            self._cache.clear()
