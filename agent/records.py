"""Records: write a pass's audit records (redacted, append-only) and find earlier ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.audit_store import record_id_for
from agent.contracts import (
    RunnerLaneMaintainerAuditRecord,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    RunnerLaneMaintainerPlan,
)
from agent.errors import AuditNotFound
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
            record_id=record_id_for(desired.lane_name, status, key, now),
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
            try:
                stored = self.store.get(record_id_for(lane, status, key, self.clock()), lane)
            except AuditNotFound:
                continue
            log.info("apply.replayed", record_id=stored.record_id)
            return stored
        return None

    def planned_once(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        pre: RunnerLaneMaintainerObservedState,
        result: RunnerLaneMaintainerPlan,
        key: str,
    ) -> RunnerLaneMaintainerAuditRecord:
        """The `planned` record of this situation: the stored one, or a new one."""
        try:
            record_id = record_id_for(desired.lane_name, "planned", key, self.clock())
            return self.store.get(record_id, desired.lane_name)
        except AuditNotFound:
            return self.write("planned", key, desired, pre, result)
