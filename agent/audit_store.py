"""Append-only filesystem audit store: one JSON file per record, never overwritten."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from agent.contracts import RunnerLaneMaintainerAuditRecord
from agent.errors import AuditConflict, AuditNotFound
from helper.redact import REDACTOR

DEFAULT_AUDIT_DIR = "/var/lib/launchplane-agent/audits"
RECORD_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,95}")


def record_id_for(lane_name: str, status: str, idempotency_key: str | None, now: datetime) -> str:
    """Keyed records get a digest id (one per key and status); unkeyed ones a unique id.

    Ids are lowercase hex and dashes only, so they can never traverse a path."""
    stamp = now.strftime("%Y%m%dt%H%M%S")
    if idempotency_key is None:
        return f"{stamp}-{status}-{secrets.token_hex(8)}"
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


def write_new_file(directory: Path, name: str, data: bytes) -> bool:
    """Atomically create `directory/name` with `data`; False if it already exists.

    temp file (O_EXCL|O_NOFOLLOW) -> write -> fsync -> link (never replaces) -> fsync dir."""
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


class FilesystemAuditStore:
    """The embedded default store under /var/lib/launchplane-agent/audits/."""

    def __init__(self, root: str | Path = DEFAULT_AUDIT_DIR) -> None:
        self.root = Path(root)

    def _ensure(self) -> None:
        self.root.mkdir(mode=0o750, parents=True, exist_ok=True)
        if self.root.is_symlink():
            raise AuditConflict(f"audit directory {self.root} is a symlink")

    def append(self, record: RunnerLaneMaintainerAuditRecord) -> RunnerLaneMaintainerAuditRecord:
        """Store a new record. A replay of a keyed record returns the stored one when the
        payload matches and raises AuditConflict when it does not."""
        if not RECORD_ID_RE.fullmatch(record.record_id):
            raise AuditConflict("record id is not a safe file name")
        self._ensure()
        body = REDACTOR.redact(record.model_dump_json(indent=2)).encode()
        if write_new_file(self.root, f"{record.record_id}.json", body):
            return record
        stored = self.get(record.record_id)
        if record.idempotency_key is None or idempotency_payload(stored) != idempotency_payload(
            record
        ):
            raise AuditConflict(
                f"record {record.record_id} exists with a different payload; use a new key"
            )
        return stored

    def get(self, record_id: str) -> RunnerLaneMaintainerAuditRecord:
        if not RECORD_ID_RE.fullmatch(record_id):
            raise AuditNotFound("not a record id")
        path = self.root / f"{record_id}.json"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise AuditNotFound(f"no record {record_id}") from None
        with os.fdopen(fd, "rb") as fh:
            return RunnerLaneMaintainerAuditRecord.model_validate_json(fh.read())

    def records(self, lane_name: str | None = None) -> Iterator[RunnerLaneMaintainerAuditRecord]:
        """All records (optionally of one lane), oldest first."""
        if not self.root.is_dir():
            return iter(())
        found = [
            self.get(p.stem) for p in self.root.glob("*.json") if RECORD_ID_RE.fullmatch(p.stem)
        ]
        found = [r for r in found if lane_name is None or r.lane_name == lane_name]
        return iter(sorted(found, key=lambda r: (r.created_at, r.record_id)))

    def latest(self, lane_name: str) -> RunnerLaneMaintainerAuditRecord | None:
        found = list(self.records(lane_name))
        return found[-1] if found else None
