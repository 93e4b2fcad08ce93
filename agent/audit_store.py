"""Append-only filesystem audit store: one JSON file per record, never overwritten."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from agent.contracts import RunnerLaneMaintainerAuditRecord
from agent.errors import AuditConflict, AuditNotFound, AuditStoreError
from agent.logs import get_logger
from helper.contract.identifiers import lane_name_findings
from helper.contract.redact import REDACTOR

DEFAULT_AUDIT_DIR = "/var/lib/launchplane-agent/audits"
DEFAULT_RETENTION_DAYS = 90  # docs/operations.md "Audit retention"
RECORD_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,95}")
QUARANTINE = ".quarantine"  # not a valid lane name: never listed as a lane
KEYS = ".keys"  # <lane>/.keys/<index name>: the id of the record stored under a key

log = get_logger(__name__)


def record_id_for(status: str, now: datetime) -> str:
    """Every record its own id (time, status, 64 random bits), never derived from a key, so
    an id names one body for ever: a lost history cannot make an old id carry a new body.

    Ids are lowercase hex and dashes only, so they can never traverse a path."""
    return f"{now:%Y%m%dt%H%M%S}-{status}-{secrets.token_hex(8)}"


def key_index_name(lane_name: str, idempotency_key: str, status: str) -> str:
    """The key -> record index entry of (lane, key, status). Stores written before records
    had their own ids named the record itself so: such a record is found by this name too."""
    digest = hashlib.sha256(f"{lane_name}\0{idempotency_key}\0{status}".encode()).hexdigest()
    return f"k-{status}-{digest[:40]}"


def idempotency_payload(record: RunnerLaneMaintainerAuditRecord) -> str:
    """What must match for a replay of the same key to be the same request."""
    return json.dumps(
        {
            "lane": record.lane_name,
            "status": record.status,
            "desired": record.desired.model_dump(mode="json"),
            "action": record.plan.action.value,
            "operation": record.plan.policy.operation.value,
        },
        sort_keys=True,
    )


def write_new_file(directory: Path, name: str, data: bytes, *, replace: bool = False) -> bool:
    """Atomically create `directory/name` with `data`; False if it already exists (with
    `replace`, an existing file is replaced instead).

    temp file (O_EXCL|O_NOFOLLOW) -> write -> fsync -> link or rename -> fsync dir."""
    tmp = directory / f".tmp-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
    if os.geteuid() == 0:  # run by hand as root: the record still belongs to the store's owner
        st = os.stat(directory)
        os.fchown(fd, st.st_uid, st.st_gid)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            if replace:
                os.replace(tmp, directory / name)
            else:
                os.link(tmp, directory / name, follow_symlinks=False)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def _write_error(target: Path, exc: OSError) -> AuditStoreError:
    """A full or read-only store: say where and why (nothing partial is left behind)."""
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return AuditStoreError(f"cannot write audit record {target}: {exc.strerror} ({name})")


class FilesystemAuditStore:
    """The embedded default store: /var/lib/launchplane-agent/audits/<lane>/<record_id>.json.

    One directory per lane keeps a pass linear: finding a lane's latest record reads that
    lane's directory listing and one record, whatever the host's history."""

    def __init__(self, root: str | Path = DEFAULT_AUDIT_DIR) -> None:
        self.root = Path(root)

    def _lane_dir(self, lane_name: str, *, create: bool = False) -> Path:
        if lane_name_findings("lane", lane_name):
            raise AuditConflict("lane name is not a safe directory name")
        if create:
            self.root.mkdir(mode=0o750, parents=True, exist_ok=True)
            if self.root.is_symlink():
                raise AuditConflict(f"audit directory {self.root} is a symlink")
            with contextlib.suppress(FileExistsError):
                (self.root / lane_name).mkdir(mode=0o750)
        lane_dir = self.root / lane_name
        if lane_dir.is_symlink():
            raise AuditConflict(f"audit directory {lane_dir} is a symlink")
        return lane_dir

    def append(self, record: RunnerLaneMaintainerAuditRecord) -> RunnerLaneMaintainerAuditRecord:
        """Store a new record under its own id. A keyed record is also indexed by (lane, key,
        status); when that key already names a record, nothing is written: the stored record
        is returned if the payload matches, AuditConflict raised if it does not."""
        if not RECORD_ID_RE.fullmatch(record.record_id):
            raise AuditConflict("record id is not a safe file name")
        key = record.idempotency_key
        if key is not None and (stored := self.by_key(record.lane_name, key, record.status)):
            return self._same_request(stored, record)
        body = REDACTOR.redact(record.model_dump_json(indent=2)).encode()
        target = self.root / record.lane_name / f"{record.record_id}.json"
        try:
            lane_dir = self._lane_dir(record.lane_name, create=True)
            if not write_new_file(lane_dir, target.name, body):
                raise AuditConflict(f"record {record.record_id} exists; ids are never reused")
        except OSError as exc:
            raise _write_error(target, exc) from None
        if key is None or self._index(lane_dir, record, key):
            return record
        target.unlink()  # another writer indexed this key first: its record is the answer
        stored = self.by_key(record.lane_name, key, record.status)
        if stored is None:
            raise AuditConflict(f"key {key!r} is indexed but its record cannot be read")
        return self._same_request(stored, record)

    def _index(self, lane_dir: Path, record: RunnerLaneMaintainerAuditRecord, key: str) -> bool:
        """Point (lane, key, status) at the record; False when another record holds it. An
        entry whose record is gone (quarantined) is replaced."""
        name = key_index_name(record.lane_name, key, record.status)
        keys = lane_dir / KEYS
        try:
            with contextlib.suppress(FileExistsError):
                keys.mkdir(mode=0o750)
            if keys.is_symlink():
                raise AuditConflict(f"key index {keys} is a symlink")
            data = record.record_id.encode()
            if write_new_file(keys, name, data):
                return True
            if self._indexed_id(record.lane_name, name) is not None:
                return False
            return write_new_file(keys, name, data, replace=True)
        except OSError as exc:
            (lane_dir / f"{record.record_id}.json").unlink(missing_ok=True)
            raise _write_error(keys / name, exc) from None

    @staticmethod
    def _same_request(
        stored: RunnerLaneMaintainerAuditRecord, record: RunnerLaneMaintainerAuditRecord
    ) -> RunnerLaneMaintainerAuditRecord:
        if idempotency_payload(stored) != idempotency_payload(record):
            raise AuditConflict(
                f"key {record.idempotency_key!r} names record {stored.record_id} with a "
                "different payload; use a new key"
            )
        return stored

    def _indexed_id(self, lane_name: str, name: str) -> str | None:
        """The record id an index entry names, if the entry and that record both exist."""
        path = self._lane_dir(lane_name) / KEYS / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as fh:
            record_id = fh.read(200).decode("ascii", "replace")
        if not RECORD_ID_RE.fullmatch(record_id):
            return None
        exists = (self._lane_dir(lane_name) / f"{record_id}.json").is_file()
        return record_id if exists else None

    def by_key(
        self, lane_name: str, idempotency_key: str, status: str
    ) -> RunnerLaneMaintainerAuditRecord | None:
        """The record stored under (lane, key, status) through the index; in a store written
        before the index existed, the record whose id is the index name."""
        name = key_index_name(lane_name, idempotency_key, status)
        record_id = self._indexed_id(lane_name, name) or name
        try:
            stored = self.get(record_id, lane_name)
        except AuditNotFound:
            return None
        if (stored.idempotency_key, stored.status) != (idempotency_key, status):
            return None
        return stored

    def _lanes(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not lane_name_findings("lane", p.name))

    def get(self, record_id: str, lane_name: str | None = None) -> RunnerLaneMaintainerAuditRecord:
        """One record; without its lane, every lane's directory is looked in."""
        if not RECORD_ID_RE.fullmatch(record_id):
            raise AuditNotFound("not a record id")
        for lane in [lane_name] if lane_name is not None else self._lanes():
            path = self._lane_dir(lane) / f"{record_id}.json"
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            with os.fdopen(fd, "rb") as fh:
                return RunnerLaneMaintainerAuditRecord.model_validate_json(fh.read())
        raise AuditNotFound(f"no record {record_id}")

    def _files(self, lane_name: str) -> list[Path]:
        lane_dir = self._lane_dir(lane_name)
        if not lane_dir.is_dir():
            return []
        return [p for p in lane_dir.glob("*.json") if RECORD_ID_RE.fullmatch(p.stem)]

    def _read(self, lane: str, path: Path) -> RunnerLaneMaintainerAuditRecord | None:
        """One stored record, or None: an unreadable or invalid file is reported and moved to
        `<root>/.quarantine/<lane>/`, so one damaged file never hides a lane's history."""
        try:
            return self.get(path.stem, lane)
        except (OSError, ValueError, AuditNotFound) as exc:
            reason = type(exc).__name__
        quarantine = self.root / QUARANTINE / lane
        try:
            quarantine.mkdir(mode=0o750, parents=True, exist_ok=True)
            os.rename(path, quarantine / path.name)
            where = str(quarantine / path.name)
        except OSError:
            where = "left in place (the store is not writable)"
        log.warning("audit.quarantined", lane=lane, path=str(path), reason=reason, moved_to=where)
        return None

    def _newest_first(self, lane_name: str) -> Iterator[RunnerLaneMaintainerAuditRecord]:
        files = sorted(
            self._files(lane_name), key=lambda p: (p.lstat().st_mtime_ns, p.name), reverse=True
        )
        for path in files:
            record = self._read(lane_name, path)
            if record is not None:
                yield record

    def records(self, lane_name: str | None = None) -> Iterator[RunnerLaneMaintainerAuditRecord]:
        """All valid records (optionally of one lane), oldest first."""
        lanes = [lane_name] if lane_name is not None else self._lanes()
        found = [r for lane in lanes for p in self._files(lane) if (r := self._read(lane, p))]
        return iter(sorted(found, key=lambda r: (r.created_at, r.record_id)))

    def latest(self, lane_name: str) -> RunnerLaneMaintainerAuditRecord | None:
        """The lane's last valid record (files are never rewritten, so the newest file)."""
        return next(self._newest_first(lane_name), None)

    def latest_completed(self, lane_name: str) -> RunnerLaneMaintainerAuditRecord | None:
        """The lane's last `completed` record: when it was last proven, if ever."""
        return next((r for r in self._newest_first(lane_name) if r.status == "completed"), None)

    def prune(self, before: datetime) -> int:
        """Retention: delete records created before `before`, except each lane's latest
        `completed` (when it was last proven stays answerable); returns how many went.
        Files are never rewritten, so one whose mtime is newer is not read at all."""
        removed = 0
        cutoff = before.timestamp()
        for lane in self._lanes():
            old = [p for p in self._files(lane) if p.lstat().st_mtime < cutoff]
            if not old:
                continue
            keep = self.latest_completed(lane)
            for path in old:
                record = self._read(lane, path)
                if record is None or record.created_at >= before:
                    continue
                if keep is not None and record.record_id == keep.record_id:
                    continue
                path.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.info("audit.pruned", removed=removed, before=before.isoformat())
        return removed
