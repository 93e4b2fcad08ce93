"""What a store holds and the one interface (a Protocol) both stores implement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from agent.contracts import RunnerLaneMaintainerAuditRecord

Outcome = Literal["created", "replay", "conflict"]
STATUSES = ("planned", "completed", "removed", "failed")


@dataclass(frozen=True)
class StoredRecord:
    """One accepted record with what the service learnt when it accepted it."""

    record: RunnerLaneMaintainerAuditRecord
    digest: str  # sha256 of the canonical JSON: what "the same body" means
    stored_at: datetime
    token_id: str  # which token posted it (the public id, never the secret)

    @property
    def record_id(self) -> str:
        return self.record.record_id

    @property
    def host(self) -> str:
        return self.record.desired.host_name

    @property
    def repository(self) -> str:
        return self.record.desired.scope  # `owner/name`, or an organization lane's login

    @property
    def lane(self) -> str:
        return self.record.lane_name

    @property
    def sort_key(self) -> tuple[datetime, str]:
        return (self.record.created_at, self.record.record_id)


@dataclass(frozen=True)
class PutResult:
    outcome: Outcome
    stored: StoredRecord  # the record now under that key (the earlier one on replay/conflict)


@dataclass(frozen=True)
class RecordQuery:
    """Filters of the read API; newest first, keyset pagination on (created_at, record_id)."""

    lane: str | None = None
    host: str | None = None
    repository: str | None = None
    status: str | None = None
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    after: tuple[datetime, str] | None = None  # the cursor: strictly older than this
    limit: int = 100


@dataclass(frozen=True)
class Pointer:
    """The newest record of one class (latest, terminal, completed, failed) of a lane."""

    record_id: str
    created_at: datetime
    status: str
    failed_gate: str | None = None


@dataclass(frozen=True)
class LaneState:
    """Per host and lane: the newest record of each class; order-independent to build."""

    host: str
    lane: str
    repository: str
    latest: Pointer
    terminal: Pointer | None
    completed: Pointer | None
    failed: Pointer | None


class EvidenceStore(Protocol):
    """Append-only record store. `put` is atomic per idempotency key (= record id)."""

    def put(self, stored: StoredRecord) -> PutResult: ...

    def get(self, record_id: str) -> StoredRecord | None: ...

    def query(self, query: RecordQuery) -> list[StoredRecord]: ...

    def lanes(
        self,
        host: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[LaneState]:
        """(host, lane) states sorted by host then lane (byte order), strictly after `after`."""
        ...

    def count(self) -> int: ...

    def close(self) -> None: ...
