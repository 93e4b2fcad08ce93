"""Records: write a pass's audit records (redacted, append-only) and find earlier ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.audit_store import record_id_for
from agent.contracts import (
    RunnerLaneMaintainerAuditRecord,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    RunnerLaneMaintainerPlan,
)
from agent.logs import get_logger
from agent.ports import AuditStore, Clock, EvidenceSink
from helper.contract.redact import REDACTOR

log = get_logger(__name__)


@dataclass(frozen=True)
class Recorder:
    """Appends records to the audit store and hands each to the evidence sink, if any."""

    store: AuditStore
    evidence: EvidenceSink | None
    clock: Clock
    written: set[str] = field(default_factory=set, compare=False)
    """Ids of the records this recorder wrote; any other record it answers is a replay."""

    def write(
        self,
        status: str,
        key: str | None,
        desired: RunnerLaneMaintainerDesiredState,
        pre: RunnerLaneMaintainerObservedState,
        result: RunnerLaneMaintainerPlan,
        **extra: Any,
    ) -> RunnerLaneMaintainerAuditRecord:
        now = self.clock()
        evidence = REDACTOR.redact_obj(extra.pop("provider_evidence", {}))
        record = RunnerLaneMaintainerAuditRecord(
            record_id=record_id_for(status, now),
            idempotency_key=key,
            lane_name=desired.lane_name,
            status=status,  # type: ignore[arg-type]
            created_at=now,
            desired=desired,
            observed_pre=pre,
            plan=result,
            provider_evidence=evidence,
            **extra,
        )
        stored = self.store.append(record)
        if stored.record_id == record.record_id:
            self.written.add(stored.record_id)
        if self.evidence is not None:
            self.evidence.add(stored)
        log.debug(  # the journal's line per record is the CLI's (agent.render.render_compact)
            "audit.record",
            status=stored.status,
            record_id=stored.record_id,
            failed_gate=stored.failed_gate,
        )
        return stored

    def replayed(self, lane: str, key: str) -> RunnerLaneMaintainerAuditRecord | None:
        """The outcome recorded earlier under this key, if the apply already ran."""
        for status in ("completed", "removed", "failed"):
            stored = self.store.by_key(lane, key, status)
            if stored is not None:
                log.info("apply.replayed", record_id=stored.record_id)
                return stored
        return None

    def is_replay(self, record: RunnerLaneMaintainerAuditRecord) -> bool:
        """Whether `record` was answered from the store rather than written now."""
        return record.record_id not in self.written

    def planned_once(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        pre: RunnerLaneMaintainerObservedState,
        result: RunnerLaneMaintainerPlan,
        key: str,
    ) -> RunnerLaneMaintainerAuditRecord:
        """The `planned` record of this situation: the stored one, or a new one."""
        stored = self.store.by_key(desired.lane_name, key, "planned")
        return stored or self.write("planned", key, desired, pre, result)
