"""The executor: observe -> plan -> (apply through GitHub and the helper) -> verify -> audit."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.audit_store import FilesystemAuditStore, record_id_for
from agent.baseline import DockerVersions, check_baseline, probe_docker
from agent.contracts import (
    BaselineState,
    GithubInventory,
    HostPolicy,
    LanesFile,
    Operation,
    PlanPolicy,
    RunnerLaneMaintainerAuditRecord,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    RunnerLaneMaintainerPlan,
    Step,
)
from agent.errors import AuditNotFound, StepFailed
from agent.evidence import EvidenceSpool
from agent.gates import evaluate_gates
from agent.github.errors import GitHubError
from agent.github.models import RunnerToken
from agent.github.payloads import inventory_named, select_download
from agent.logs import get_logger
from agent.observe_local import observe_directory, service_user_uid
from agent.planner import plan
from agent.ports import GitHubPort, HelperPort, UnitObserver
from helper.contract.dropin import rendered_hash
from helper.contract.errors import LaunchplaneError
from helper.contract.redact import REDACTOR

log = get_logger("launchplane.agent")

ARCHITECTURES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
READ_ONLY_LABELS = frozenset({"self-hosted", "linux", "x64", "arm64", "arm"})
HELPER_VERBS = {
    Step.INSTALL_OR_UPDATE_UNIT: "install-or-update-unit",
    Step.DAEMON_RELOAD: "daemon-reload",
    Step.ENABLE_NOW: "enable-now",
    Step.RESTART: "restart",
    Step.STOP: "stop",
    Step.DISABLE: "disable",
    Step.REMOVE_UNIT: "remove-unit",
    Step.REMOVE_DIRECTORY: "remove-runner-directory",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


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
        "unit": [observed.unit.active_state, observed.unit.main_pid, observed.unit.n_restarts],
        "github": sorted((r.id, r.status) for r in runners),
        "baseline": sorted(f.code for f in observed.baseline.findings)
        if observed.baseline
        else None,
        "last_failed": last_failed,
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    return f"pass-{digest[:32]}"


@dataclass
class StepLog:
    """What ran, how long it took, and what the helper or GitHub said (redacted)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, step: str, seconds: float, **detail: Any) -> None:
        self.entries.append({"step": step, "seconds": round(seconds, 4), **detail})


@dataclass
class Agent:
    """One host's agent. Every outside thing is a port; clock and sleep are injected."""

    declared: LanesFile
    github: GitHubPort
    helper: HelperPort
    units: UnitObserver
    store: FilesystemAuditStore
    cache_dir: Path = Path("/var/cache/launchplane-agent")
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    host_name: Callable[[], str] = socket.gethostname
    user_uid: Callable[[str], int | None] = service_user_uid
    evidence: EvidenceSpool | None = None
    baseline: Callable[
        [RunnerLaneMaintainerDesiredState, HostPolicy, datetime, DockerVersions], BaselineState
    ] = check_baseline
    docker: Callable[[], DockerVersions] = probe_docker
    online_timeout: float = 120.0
    poll_interval: float = 2.0
    architecture: str = field(
        default_factory=lambda: ARCHITECTURES.get(platform.machine().lower(), "x64")
    )

    # --- observation ------------------------------------------------------------------------

    def _inventories(
        self, lanes: Sequence[RunnerLaneMaintainerDesiredState]
    ) -> tuple[dict[str, GithubInventory | None], dict[str, str]]:
        """One listing per repository (ETag: a steady pass costs no rate limit)."""
        out: dict[str, GithubInventory | None] = {}
        errors: dict[str, str] = {}
        for repository in sorted({lane.repository for lane in lanes}):
            try:
                runners = self.github.list_runners(repository)
            except GitHubError as exc:
                errors[repository] = f"{exc.code}: {exc}"
                runners = None
            for lane in lanes:
                if lane.repository == repository:
                    out[lane.lane_name] = (
                        None if runners is None else inventory_named(runners, lane.lane_name)
                    )
        return out, errors

    def observe(
        self, lanes: Sequence[RunnerLaneMaintainerDesiredState]
    ) -> tuple[dict[str, RunnerLaneMaintainerObservedState], dict[str, str]]:
        inventories, errors = self._inventories(lanes)
        units = self.units.observe(lanes)
        versions = self.docker()  # once per pass, not per lane
        host = self.host_name()
        out = {}
        for lane in lanes:
            now = self.clock()
            out[lane.lane_name] = RunnerLaneMaintainerObservedState(
                lane_name=lane.lane_name,
                host_name=host,
                observed_at=now,
                service_user_uid=self.user_uid(lane.service_user),
                github=inventories.get(lane.lane_name),
                local=observe_directory(lane),
                unit=units[lane.lane_name],
                baseline=self._baseline(lane, now, versions),
            )
        return out, errors

    def _baseline(
        self, lane: RunnerLaneMaintainerDesiredState, now: datetime, versions: DockerVersions
    ) -> BaselineState | None:
        """The lane's baseline, or None (which blocks) when it could not be checked."""
        try:
            return self.baseline(lane, self.declared.policy, now, versions)
        except (OSError, LaunchplaneError) as exc:
            log.warning("baseline.unavailable", lane=lane.lane_name, error=type(exc).__name__)
            return None

    def observe_one(
        self, lane: RunnerLaneMaintainerDesiredState
    ) -> RunnerLaneMaintainerObservedState:
        observed, _ = self.observe([lane])
        return observed[lane.lane_name]

    # --- records ----------------------------------------------------------------------------

    def _record(
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
        log.info(
            "audit.record",
            lane=desired.lane_name,
            status=stored.status,
            record_id=stored.record_id,
            failed_gate=stored.failed_gate,
        )
        return stored

    def _replayed(self, lane: str, key: str) -> RunnerLaneMaintainerAuditRecord | None:
        for status in ("completed", "removed", "failed"):
            try:
                return self.store.get(record_id_for(lane, status, key, self.clock()), lane)
            except AuditNotFound:
                continue
        return None

    # --- one lane ---------------------------------------------------------------------------

    def run(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        policy: PlanPolicy,
        pre: RunnerLaneMaintainerObservedState | None = None,
    ) -> RunnerLaneMaintainerAuditRecord:
        """Plan one lane; on apply, act, verify every gate and record the outcome."""
        key = policy.idempotency_key
        if policy.mode == "apply" and key:
            stored = self._replayed(desired.lane_name, key)
            if stored is not None:
                log.info("apply.replayed", lane=desired.lane_name, record_id=stored.record_id)
                return stored
        pre = pre if pre is not None else self.observe_one(desired)
        result = plan(self.declared, desired, pre, policy, self.clock())
        planned = self._record("planned", key, desired, pre, result)
        if policy.mode != "apply":
            return planned
        if result.status == "blocked":
            codes = ", ".join(sorted({b.code for b in result.blockers}))
            return self._record("failed", key, desired, pre, result, error=f"plan blocked: {codes}")
        steps = StepLog()
        evidence: dict[str, Any] = {}
        try:
            self._apply(desired, pre, result, steps, evidence)
        except (LaunchplaneError, OSError) as exc:
            step = exc.step if isinstance(exc, StepFailed) else "apply"
            evidence["steps"] = steps.entries
            return self._record(
                "failed",
                key,
                desired,
                pre,
                result,
                error=REDACTOR.redact(f"{step}: {exc}"),
                provider_evidence=evidence,
            )
        evidence["steps"] = steps.entries
        return self._verify(key, desired, pre=pre, result=result, steps=steps, evidence=evidence)

    def _apply(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        pre: RunnerLaneMaintainerObservedState,
        result: RunnerLaneMaintainerPlan,
        steps: StepLog,
        evidence: dict[str, Any],
    ) -> None:
        tokens: dict[str, RunnerToken] = {}
        archive: str | None = None
        unit_changed = True
        runners = pre.github.runners if pre.github else ()
        for step in result.steps:
            if step is Step.VERIFY:
                continue
            started = time.monotonic()
            detail: dict[str, Any] = {}
            try:
                if step is Step.FETCH_REGISTRATION_TOKEN:
                    tokens["registration"] = self.github.registration_token(desired.repository)
                    evidence["registration_token"] = tokens["registration"].evidence()
                elif step is Step.FETCH_REMOVE_TOKEN:
                    tokens["remove"] = self.github.remove_token(desired.repository)
                    evidence["remove_token"] = tokens["remove"].evidence()
                elif step is Step.DOWNLOAD_RUNNER:
                    archive = self._download(desired, evidence)
                elif step is Step.INSTALL_RUNNER:
                    detail = self.helper.call(
                        "install-runner", desired.lane_name, archive_sha256=archive
                    )
                elif step is Step.REGISTER_RUNNER:
                    token = tokens["registration"].token
                    detail = self.helper.call("register-runner", desired.lane_name, token=token)
                elif step is Step.UNREGISTER_RUNNER:
                    token = tokens["remove"].token
                    detail = self.helper.call("unregister-runner", desired.lane_name, token=token)
                elif step is Step.DELETE_GITHUB_RUNNER:
                    for runner in runners:
                        detail[str(runner.id)] = self.github.delete_runner(
                            desired.repository, runner.id
                        )
                elif step is Step.SET_LABELS:
                    custom = [x for x in desired.labels if x.lower() not in READ_ONLY_LABELS]
                    for runner in runners:
                        labels = self.github.set_custom_labels(
                            desired.repository, runner.id, custom
                        )
                        detail[str(runner.id)] = sorted(label.name for label in labels)
                elif step is Step.DAEMON_RELOAD and not unit_changed:
                    detail = {"skipped": "drop-in unchanged"}
                else:
                    detail = self.helper.call(HELPER_VERBS[step], desired.lane_name)
                    if step is Step.INSTALL_OR_UPDATE_UNIT:
                        unit_changed = bool(detail.get("changed", True))
            except StepFailed:
                steps.add(step.value, time.monotonic() - started, ok=False)
                raise
            except (LaunchplaneError, OSError) as exc:
                steps.add(step.value, time.monotonic() - started, ok=False)
                raise StepFailed(step.value, str(exc)) from None
            steps.add(step.value, time.monotonic() - started, ok=True, result=detail)

    def _download(self, desired: RunnerLaneMaintainerDesiredState, evidence: dict[str, Any]) -> str:
        """The runner archive, sha256-verified, at <cache>/runners/<sha256>.tar.gz."""
        download = select_download(
            self.github.runner_downloads(desired.repository), "linux", self.architecture
        )
        version = desired.runner_version_policy
        if version != "latest" and f"-{version}.tar.gz" not in download.filename:
            raise StepFailed("download_runner", f"GitHub offers {download.filename}, not {version}")
        path = self.github.download_runner(download, self.cache_dir / "downloads")
        sha = (download.sha256_checksum or "").lower()
        runners_dir = self.cache_dir / "runners"
        runners_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        target = runners_dir / f"{sha}.tar.gz"
        runners_dir.chmod(0o755)  # the helper is root without CAP_DAC_READ_SEARCH
        if not target.exists():
            tmp = runners_dir / f".{secrets.token_hex(6)}"
            os.link(path, tmp)
            os.replace(tmp, target)
        target.chmod(0o644)
        evidence["runner_archive"] = {"filename": download.filename, "sha256": sha}
        return sha

    # --- verification -----------------------------------------------------------------------

    def _wait_online(self, desired: RunnerLaneMaintainerDesiredState) -> GithubInventory | None:
        deadline = time.monotonic() + self.online_timeout
        inventory: GithubInventory | None = None
        while True:
            try:
                inventory = self.github.runners_named(desired.repository, desired.lane_name)
            except GitHubError as exc:
                log.warning("verify.github_unavailable", lane=desired.lane_name, error=exc.code)
            if (
                inventory
                and len(inventory.runners) == 1
                and inventory.runners[0].status == "online"
            ):
                return inventory
            if time.monotonic() >= deadline:
                return inventory
            self.sleep(self.poll_interval)

    def _verify(
        self,
        key: str | None,
        desired: RunnerLaneMaintainerDesiredState,
        *,
        pre: RunnerLaneMaintainerObservedState,
        result: RunnerLaneMaintainerPlan,
        steps: StepLog,
        evidence: dict[str, Any],
    ) -> RunnerLaneMaintainerAuditRecord:
        if result.policy.operation is Operation.REMOVE:
            return self._verify_removed(key, desired, pre, result, evidence)
        started = time.monotonic()
        self._wait_online(desired)
        steps.add("wait_online", time.monotonic() - started, ok=True)
        started = time.monotonic()
        post = self.observe_one(desired)
        steps.add("observe_post_and_baseline", time.monotonic() - started, ok=True)
        runners = post.github.runners if post.github else ()
        evidence["runners"] = [r.model_dump(mode="json") for r in runners]
        evidence["github_requests"] = self.github.stats.as_evidence()
        now = self.clock()
        gates = evaluate_gates(
            self.declared,
            desired,
            post,
            expected_dropin_hash=rendered_hash(desired),
            provider_evidence=evidence,
            now=now,
        )
        failed = next((g for g in gates if not g.passed), None)
        return self._record(
            "failed" if failed else "completed",
            key,
            desired,
            pre,
            result,
            observed_post=post,
            gates=gates,
            failed_gate=failed.gate if failed else None,
            error=failed.detail if failed else None,
            provider_evidence=evidence,
        )

    def _verify_removed(
        self,
        key: str | None,
        desired: RunnerLaneMaintainerDesiredState,
        pre: RunnerLaneMaintainerObservedState,
        result: RunnerLaneMaintainerPlan,
        evidence: dict[str, Any],
    ) -> RunnerLaneMaintainerAuditRecord:
        """A remove completes no lane; it succeeds when nothing of the lane is left."""
        post = self.observe_one(desired)
        left = []
        if post.github is None or post.github.runners:
            left.append("GitHub registration")
        if post.unit.exists:
            left.append("unit")
        if post.local.exists:
            left.append("runner directory")
        return self._record(
            "failed" if left else "removed",
            key,
            desired,
            pre,
            result,
            observed_post=post,
            error=("left behind: " + ", ".join(left)) if left else None,
            provider_evidence=evidence,
        )

    # --- the timer's pass -------------------------------------------------------------------

    def reconcile_pass(self) -> list[RunnerLaneMaintainerAuditRecord]:
        """One pass over every declared lane. Only `apply = true` lanes are mutated; the
        root-written file is the confirmation. Identical situations write nothing new."""
        lanes = list({lane.lane_name: lane for lane in self.declared.lanes}.values())
        observed, errors = self.observe(lanes)
        for repository, error in errors.items():
            log.warning("github.inventory_failed", repository=repository, error=error)
        out = []
        for lane in lanes:
            pre = observed[lane.lane_name]
            last = self.store.latest(lane.lane_name)
            last_failed = last.record_id if last and last.status == "failed" else None
            dry = plan(self.declared, lane, pre, PlanPolicy(), self.clock())
            key = pass_key(lane, pre, dry, last_failed)
            if lane.apply:
                policy = PlanPolicy(
                    mode="apply", idempotency_key=key, confirmation=f"apply {lane.lane_name}"
                )
                out.append(self.run(lane, policy, pre))
            else:
                out.append(self._planned_once(lane, pre, dry, key))
        return out

    def _planned_once(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        pre: RunnerLaneMaintainerObservedState,
        result: RunnerLaneMaintainerPlan,
        key: str,
    ) -> RunnerLaneMaintainerAuditRecord:
        try:
            record_id = record_id_for(desired.lane_name, "planned", key, self.clock())
            return self.store.get(record_id, desired.lane_name)
        except AuditNotFound:
            return self._record("planned", key, desired, pre, result)
