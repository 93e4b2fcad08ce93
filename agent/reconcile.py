"""Reconcile: the pass over every lane (observe, plan, apply, verify, record) and its key."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from structlog.contextvars import bound_contextvars

from agent.apply import Applier, Applying, StepLog
from agent.blockers import BlockerCode
from agent.contracts import (
    Action,
    GithubProblem,
    LanesFile,
    Operation,
    PlanPolicy,
    RunnerLaneMaintainerAuditRecord,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    RunnerLaneMaintainerPlan,
)
from agent.errors import PlanStepFailed, ProofStale
from agent.github.errors import GitHubRateLimited
from agent.logs import get_logger
from agent.observe import Observer
from agent.planner import plan, retarget
from agent.ports import SILENT, Clock, Progress, SchedulePort
from agent.records import Recorder
from agent.schedule import Cadence, Schedule, next_look
from agent.upgrade import roll_back, upgrade_evidence
from agent.verify import Verifier
from helper.contract.errors import LaunchplaneError, UsageError
from helper.contract.redact import REDACTOR

log = get_logger(__name__)


def desired_hash(desired: RunnerLaneMaintainerDesiredState) -> str:
    return hashlib.sha256(desired.model_dump_json().encode()).hexdigest()


def pass_key(
    desired: RunnerLaneMaintainerDesiredState,
    observed: RunnerLaneMaintainerObservedState,
    result: RunnerLaneMaintainerPlan,
    last_failed: str | None,
) -> str:
    """The timer-driven pass's idempotency key: lane + desired-state hash + plan, plus the
    facts that make one situation differ from another (process, restarts, GitHub status)
    and the last failed record, so that a failure is retried on the next pass while a
    steady, proven lane writes nothing new."""
    runners = observed.github.runners if observed.github else ()
    facts = {
        "lane": desired.lane_name,
        "desired": desired_hash(desired),
        "plan": [result.status, result.action.value, result.shape.value, list(result.steps)],
        "blockers": sorted(b.code for b in result.blockers),
        "unit": [
            observed.unit.active_state,
            observed.unit.unit_file_state,
            observed.unit.main_pid,
            observed.unit.n_restarts,
            observed.unit.need_daemon_reload,
            observed.unit.dropin_hash,
            list(observed.unit.drop_in_paths),
        ],
        "github": sorted((r.id, r.status, sorted(r.label_names)) for r in runners),
        "baseline": sorted(f.code for f in observed.baseline.findings)
        if observed.baseline
        else None,
        "last_failed": last_failed,
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    return f"pass-{digest[:32]}"


@dataclass(frozen=True)
class Reconciler:
    """One host's agent: the phases, each behind its ports, composed by agent.wiring."""

    declared: LanesFile
    observer: Observer
    applier: Applier
    verifier: Verifier
    recorder: Recorder
    schedule: SchedulePort
    cadence: Cadence
    clock: Clock
    progress: Progress = SILENT

    def run(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        policy: PlanPolicy,
        pre: RunnerLaneMaintainerObservedState | None = None,
    ) -> RunnerLaneMaintainerAuditRecord:
        """Plan one lane; on apply, act, verify every gate and record the outcome."""
        with bound_contextvars(lane=desired.lane_name):
            key = policy.idempotency_key
            if policy.mode == "apply" and key:
                stored = self.recorder.replayed(desired.lane_name, key)
                if stored is not None:
                    return self._replay(desired, policy, stored)
            if pre is None:
                self.progress.step(desired.lane_name, "observing GitHub, systemd and the host")
                pre = self.observer.observe_one(desired)
            result = plan(self.declared, desired, pre, policy, self.clock())
            return self.carry_out(desired, pre, result)

    def _replay(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        policy: PlanPolicy,
        stored: RunnerLaneMaintainerAuditRecord,
    ) -> RunnerLaneMaintainerAuditRecord:
        """An explicit key names one request: the same key for another operation, lane state
        or flags is refused (exit 2); a stored `completed` is answered only while its gates
        still hold on a fresh observation."""
        earlier = stored.plan.policy
        asked = (policy.operation, policy.drain_confirmed, desired_hash(desired))
        recorded = (earlier.operation, earlier.drain_confirmed, desired_hash(stored.desired))
        if asked != recorded:
            raise UsageError(
                f"--idempotency-key {policy.idempotency_key!r} was used at "
                f"{stored.created_at:%Y-%m-%d %H:%M:%S} for {earlier.operation.value} of "
                f"{stored.lane_name} (record {stored.record_id}) with other flags or another "
                "desired state; use a new key for this request"
            )
        if stored.status == "completed":
            failing = self.verifier.holds(desired, self.observer.observe_one(desired))
            if failing is not None:
                raise ProofStale(
                    f"--idempotency-key {policy.idempotency_key!r} proved this lane at "
                    f"{stored.created_at:%Y-%m-%d %H:%M:%S} (record {stored.record_id}), but "
                    f"it no longer holds ({failing.gate.value}: {failing.detail}); run again "
                    "with a new key to act"
                )
        log.info("apply.replayed", record_id=stored.record_id)
        return stored

    def carry_out(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        pre: RunnerLaneMaintainerObservedState,
        result: RunnerLaneMaintainerPlan,
    ) -> RunnerLaneMaintainerAuditRecord:
        """Record the plan; in apply mode and ready, apply it, verify and record the outcome."""
        key = result.policy.idempotency_key
        refused = {BlockerCode.MISSING_CONFIRMATION, BlockerCode.MISSING_IDEMPOTENCY_KEY}
        if refused & {b.code for b in result.blockers}:
            key = None  # refused before any action: a retry with the same key must run
        planned = self.recorder.write("planned", key, desired, pre, result)
        if result.policy.mode != "apply":
            return planned
        if result.status == "blocked":
            codes = ", ".join(sorted({b.code for b in result.blockers}))
            error = f"plan blocked: {codes}"
            self.progress.step(desired.lane_name, error)
            return self.recorder.write("failed", key, desired, pre, result, error=error)
        self.progress.step(desired.lane_name, f"{result.action.value}: {len(result.steps)} steps")
        steps = StepLog()
        evidence: dict[str, Any] = {}
        run = Applying(desired, pre, evidence, drain_wait=result.policy.drain_wait_seconds)
        if result.action is Action.UPGRADE:
            evidence["runner_upgrade"] = upgrade_evidence(pre)
        try:
            self.applier.apply(result, run, steps)
        except (LaunchplaneError, OSError) as exc:
            step = exc.step if isinstance(exc, PlanStepFailed) else "apply"
            undone = roll_back(self.applier, result, run, steps)
            evidence["steps"] = steps.entries
            error = REDACTOR.redact(f"{step}: {exc}{undone}")
            return self.recorder.write(
                "failed", key, desired, pre, result, error=error, provider_evidence=evidence
            )
        evidence["steps"] = steps.entries  # the verify timings join the same list below
        if result.policy.operation is Operation.REMOVE:
            verdict = self.verifier.verify_removed(desired)
        else:
            verdict = self.verifier.verify(desired, evidence)
        for name, seconds in verdict.timings:
            steps.add(name, seconds, ok=True)
        fields = verdict.record_fields()
        if verdict.status == "failed" and (undone := roll_back(self.applier, result, run, steps)):
            fields["error"] = REDACTOR.redact(f"{fields['error'] or 'verify failed'}{undone}")
        failing = f" ({verdict.failed_gate.value})" if verdict.failed_gate else ""
        self.progress.step(desired.lane_name, f"{verdict.status}{failing}")
        return self.recorder.write(
            verdict.status, key, desired, pre, result, provider_evidence=evidence, **fields
        )

    def reconcile_pass(self, *, every_lane: bool = False) -> list[RunnerLaneMaintainerAuditRecord]:
        """One pass over the lanes that are due (or every lane), one plan per lane; saves when
        each wants to be looked at again. Only `apply = true` lanes are mutated; the
        root-written file is the confirmation. Identical situations write nothing new."""
        with bound_contextvars(pass_id=secrets.token_hex(6)):
            return self._pass(every_lane)

    def _pass(self, every_lane: bool) -> list[RunnerLaneMaintainerAuditRecord]:
        now = self.clock()
        schedule = self.schedule.load()
        declared = list({lane.lane_name: lane for lane in self.declared.lanes}.values())
        hashes = {lane.lane_name: desired_hash(lane) for lane in declared}
        lanes = [
            lane
            for lane in declared
            if every_lane or schedule.is_due(lane.lane_name, hashes[lane.lane_name], now)
        ]
        self.progress.step(None, f"observing {len(lanes)} of {len(declared)} lanes")
        observed, errors = self.observer.observe(lanes) if lanes else ({}, {})
        for repository, error in errors.items():
            log.warning("github.inventory_failed", repository=repository, error=error.code)
        out, changes = [], {}
        for lane in lanes:
            with bound_contextvars(lane=lane.lane_name):
                record = self._pass_lane(lane, observed[lane.lane_name])
            out.append(record)
            changes[lane.lane_name] = next_look(
                record,
                now=now,
                desired_hash=hashes[lane.lane_name],
                cadence=self.cadence,
                rate_limited_until=self._rate_limited_until(errors.get(lane.scope), now),
            )
        self._save(schedule.updated(changes, set(hashes)))
        return out

    def _pass_lane(
        self, lane: RunnerLaneMaintainerDesiredState, pre: RunnerLaneMaintainerObservedState
    ) -> RunnerLaneMaintainerAuditRecord:
        self.progress.step(lane.lane_name, "planning")
        last = self.recorder.store.latest(lane.lane_name)
        last_failed = last.record_id if last and last.status == "failed" else None
        dry = plan(self.declared, lane, pre, PlanPolicy(), self.clock())
        key = pass_key(lane, pre, dry, last_failed)
        if not lane.apply:
            return self.recorder.planned_once(lane, pre, dry, key)
        stored = self.recorder.replayed(lane.lane_name, key)
        if stored is not None and stored.status == "completed":
            failing = self.verifier.holds(lane, pre)
            if failing is None:
                return stored  # steady: the proof still holds on this pass's observation
            log.info("pass.proof_stale", record_id=stored.record_id, gate=failing.gate.value)
            key = pass_key(lane, pre, dry, f"stale:{stored.record_id}")  # act anew
        elif stored is not None:
            return stored
        confirmation = f"apply {lane.lane_name}"
        policy = PlanPolicy(mode="apply", idempotency_key=key, confirmation=confirmation)
        return self.carry_out(lane, pre, retarget(dry, policy))

    def _rate_limited_until(self, problem: GithubProblem | None, now: datetime) -> datetime | None:
        """GitHub's `Retry-After`/reset for a rate-limited listing, or the reset of an
        exhausted budget; None when GitHub may be asked again."""
        if problem is not None and problem.code == GitHubRateLimited.code:
            return problem.retry_at or now + self.cadence.retry
        limit = self.observer.github.stats.rate_limit
        if limit is not None and limit.remaining == 0:
            return datetime.fromtimestamp(limit.reset, UTC)
        return None

    def _save(self, schedule: Schedule) -> None:
        """A schedule that cannot be saved leaves every lane due next tick (log, carry on)."""
        try:
            self.schedule.save(schedule)
        except OSError as exc:
            log.warning("schedule.not_saved", error=type(exc).__name__)
