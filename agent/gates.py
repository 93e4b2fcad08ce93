"""The eight completion gates, checked purely against a fresh post-apply observation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.classify import label_problems
from agent.contracts import (
    Gate,
    GateResult,
    GithubInventory,
    LanesFile,
    LocalRunnerDirectory,
    Operation,
    PlanPolicy,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    UnitState,
)
from agent.planner import plan
from helper.contract.dropin import expected_service, lane_dropin_path
from helper.contract.identifiers import MANAGED_LABEL
from helper.contract.lane_policy import lane_findings


def _result(gate: Gate, problems: list[str], ok: str) -> GateResult:
    return GateResult(gate=gate, passed=not problems, detail="; ".join(problems) or ok)


def _unit(
    desired: RunnerLaneMaintainerDesiredState,
    unit: UnitState,
    expected_hash: str,
    tolerated: frozenset[str],
) -> list[str]:
    """Enabled, active and ours — judged by what systemd has loaded and runs, not by files."""
    problems = []
    if unit.unit_file_state != "enabled":
        problems.append(f"unit is {unit.unit_file_state or 'not installed'}, not enabled")
    if unit.active_state != "active":
        problems.append(f"unit is {unit.active_state}/{unit.sub_state}, not active")
    if not unit.managed:
        problems.append("drop-in lacks valid ownership marks")
    elif unit.dropin_hash != expected_hash:
        problems.append("drop-in hash differs from the rendered desired state")
    if unit.need_daemon_reload:
        problems.append("NeedDaemonReload=yes: systemd runs a configuration older than its files")
    own = unit.dropin_path or lane_dropin_path(desired)
    foreign = [p for p in unit.drop_in_paths if p != own and p.rsplit("/", 1)[-1] not in tolerated]
    if own not in unit.drop_in_paths:
        problems.append(f"systemd has not loaded {own}")
    if foreign:
        problems.append(f"foreign drop-ins loaded: {', '.join(foreign)}")
    want = expected_service(desired)
    effective = {
        "User": (unit.user, want.user),
        "Group": (unit.group, want.group),
        "WorkingDirectory": (unit.working_directory, want.working_directory),
        "ExecStart": (unit.exec_start, (want.exec_start,)),
    }
    for key, (have, expected) in effective.items():
        if have != expected:
            problems.append(f"effective {key}={have!r}, desired {expected!r}")
    if unit.main_pid <= 0:
        problems.append("no MainPID")
    elif not unit.main_pid_in_unit_cgroup:
        problems.append("MainPID is not in the unit's own cgroup")
    return problems


def listener_problems(unit: UnitState) -> list[str]:
    """The lane's own listener holds the runner's session: since the unit's activation its
    journal shows "Listening for Jobs" after the last "A session for this runner already
    exists." GitHub's "online" may be another listener's session (a copied registration)."""
    if unit.active_state != "active":
        return []  # the unit gate names that already
    journal = unit.listener_log
    if journal is None or journal.unreadable is not None:
        why = journal.unreadable if journal else "the listener's journal was not observed"
        return [f"session_unproven: {why}"]
    if journal.session_conflicts and not journal.listening:
        return [
            f"session_conflict: the lane's listener reported {journal.session_conflicts} time(s) "
            "since its activation that a session for this runner already exists: another "
            "listener holds this runner's session"
        ]
    if not journal.listening:
        return [
            "session_unproven: the listener has not reported Listening for Jobs since its "
            "activation"
        ]
    return []


def stability_problems(first: UnitState, second: UnitState) -> list[str]:
    """The unit stayed up between two observations: same MainPID, no restart, no new
    activation, and its listener holds the session at the second (`listener_problems`). A
    crash-looping runner sampled while it happens to be active fails here; so does a
    listener looping on a session conflict while GitHub shows an impostor's session online."""
    problems = listener_problems(second)
    if second.n_restarts != first.n_restarts:
        problems.append(
            f"restarted {second.n_restarts - first.n_restarts} time(s) in the stability window"
        )
    if second.main_pid != first.main_pid:
        problems.append(f"MainPID changed from {first.main_pid} to {second.main_pid}")
    if second.active_enter_monotonic != first.active_enter_monotonic:
        problems.append("the unit re-entered active during the stability window")
    return problems


def _process(
    desired: RunnerLaneMaintainerDesiredState, unit: UnitState, uid: int | None
) -> list[str]:
    """MainPID runs the desired program as the service user with no other identity, and no
    process of that user runs outside the lane units."""
    proc = unit.main_process
    if uid is None:
        return ["service user does not exist"]
    if proc is None:
        return [f"MainPID {unit.main_pid} could not be read"]
    problems = []
    if set(proc.uids) != {uid}:
        problems.append(f"MainPID uids {list(proc.uids)} are not all the service user's {uid}")
    if len(set(proc.gids)) != 1 or 0 in proc.gids:
        problems.append(f"MainPID gids {list(proc.gids)}")
    elif set(proc.groups) - set(proc.gids):
        problems.append(f"MainPID has supplementary groups {sorted(set(proc.groups))}")
    program = expected_service(desired).exec_start
    if proc.cmdline[-len(program) :] != program:
        problems.append(f"MainPID runs {list(proc.cmdline)}, not {list(program)}")
    problems += [
        f"process {p.pid} of the service user runs outside the lane units: {list(p.cmdline)}"
        for p in unit.outsiders
    ]
    return problems


def _group(
    desired: RunnerLaneMaintainerDesiredState, post: RunnerLaneMaintainerObservedState
) -> list[str]:
    """An organization lane's declared runner group is the one GitHub placed the runner in."""
    inventory = post.github
    if desired.runner_group is None or inventory is None or len(inventory.runners) != 1:
        return []
    want = post.runner_group.id if post.runner_group is not None else None
    have = inventory.runners[0].runner_group_id
    if want is None:
        return [f"runner group {desired.runner_group!r} was not found in {desired.scope}"]
    if have != want:
        return [
            f"runner {inventory.runners[0].id} is in runner group {have}, the lane declares "
            f"{desired.runner_group!r} (id {want})"
        ]
    return []


def _github(inventory: GithubInventory | None, local: LocalRunnerDirectory) -> list[str]:
    """Exactly one runner of that name, online, and it is this lane's own registration."""
    if inventory is None:
        return ["GitHub inventory was not read"]
    if len(inventory.runners) != 1:
        return [f"{len(inventory.runners)} runners of that name, want exactly 1"]
    runner = inventory.runners[0]
    problems = [] if runner.status == "online" else [f"runner {runner.id} is {runner.status}"]
    agent_id = local.runner_file.agent_id if local.runner_file else None
    if agent_id is None:
        problems.append(".runner has no agentId: the runner's identity is unproven")
    elif agent_id != runner.id:
        problems.append(f".runner agentId {agent_id} is not GitHub's runner {runner.id}")
    return problems


def _labels(
    desired: RunnerLaneMaintainerDesiredState, inventory: GithubInventory | None
) -> list[str]:
    if inventory is None or len(inventory.runners) != 1:
        return ["no single runner to compare labels with"]
    return label_problems(desired, inventory.runners[0])


def _refuses_unmanaged(
    declared: LanesFile,
    desired: RunnerLaneMaintainerDesiredState,
    observed: RunnerLaneMaintainerObservedState,
    now: datetime,
) -> list[str]:
    """Restart and remove exist for this lane, and both refuse an unmanaged twin of it."""
    problems = []
    inventory = observed.github
    unmanaged_runners = tuple(
        r.model_copy(update={"labels": tuple(lb for lb in r.labels if lb.name != MANAGED_LABEL)})
        for r in (inventory.runners if inventory else ())
    )
    unmanaged = observed.model_copy(
        update={
            "github": GithubInventory(
                runners=unmanaged_runners, total_count=len(unmanaged_runners)
            ),
            "unit": observed.unit.model_copy(update={"dropin_lane_mark": None}),
        }
    )
    for operation in (Operation.RESTART, Operation.REMOVE):
        policy = PlanPolicy(operation=operation, drain_confirmed=True)
        mine = plan(
            declared, desired, observed.model_copy(update={"observed_at": now}), policy, now
        )
        theirs = plan(
            declared, desired, unmanaged.model_copy(update={"observed_at": now}), policy, now
        )
        if mine.status != "ready":
            problems.append(
                f"{operation.value} is not available: {[b.code for b in mine.blockers]}"
            )
        if "unmanaged_runner" not in {b.code for b in theirs.blockers}:
            problems.append(f"{operation.value} does not refuse an unmanaged runner")
    return problems


def evaluate_gates(
    declared: LanesFile,
    desired: RunnerLaneMaintainerDesiredState,
    post: RunnerLaneMaintainerObservedState,
    *,
    expected_dropin_hash: str,
    provider_evidence: dict[str, Any],
    now: datetime,
    tolerated_dropins: frozenset[str] = frozenset(),
    earlier: RunnerLaneMaintainerObservedState | None = None,
) -> tuple[GateResult, ...]:
    """All eight gates in order; the record may say `completed` only if every one passed.
    `earlier`: the first sample of the stability window (`stability_problems`); a caller with
    one observation (a replay check, `status`) passes it as its own earlier sample."""
    findings = lane_findings(desired, declared.policy, declared.lanes, declared.counts)
    declared_problems = [f"{f.code}: {f.message}" for f in findings]
    if not declared.declares(desired):
        declared_problems.append("lane is not declared in lanes.toml")
    uid = post.service_user_uid
    user_problems = _process(desired, post.unit, uid)
    baseline_problems = (
        ["baseline was not observed after the start"]
        if post.baseline is None
        else [f"{f.code}: {f.message}" for f in post.baseline.findings]
    )
    evidence_problems = []
    if post.github is None or not post.github.runners:
        evidence_problems.append("no GitHub inventory")
    if post.baseline is None or not post.baseline.evidence:
        evidence_problems.append("no baseline evidence")
    if not provider_evidence:
        evidence_problems.append("no provider evidence")
    if post.unit.load_state == "not-found":
        evidence_problems.append("no service state")
    return (
        _result(Gate.DECLARED, declared_problems, "declared and allowlisted"),
        _result(
            Gate.UNIT_ACTIVE,
            _unit(desired, post.unit, expected_dropin_hash, tolerated_dropins)
            + (stability_problems(earlier.unit, post.unit) if earlier is not None else []),
            "enabled, active, owned; systemd runs the desired configuration",
        ),
        _result(Gate.PROCESS_USER, user_problems, f"MainPID runs run.sh as uid {uid} only"),
        _result(
            Gate.GITHUB_ONLINE,
            _github(post.github, post.local) + _group(desired, post),
            "exactly one runner, online, this lane's registration",
        ),
        _result(Gate.LABELS, _labels(desired, post.github), "labels equal the declared set"),
        _result(Gate.BASELINE, baseline_problems, "baseline ready after start"),
        _result(Gate.EVIDENCE, evidence_problems, "service, inventory, labels, baseline, provider"),
        _result(
            Gate.MANAGED_PATHS,
            _refuses_unmanaged(declared, desired, post, now),
            "restart and remove available, refuse unmanaged",
        ),
    )
