"""Every row of the decision table in docs/runner-lane-baseline.md, planned and checked."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from agent.blockers import blocker_key
from agent.contracts import (
    BaselineFinding,
    GithubProblem,
    LanesFile,
    Operation,
    PlanPolicy,
    RunnerFile,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    RunnerVersions,
    Shape,
    Step,
)
from agent.planner import plan
from tests.planner import factories as f

DOC = Path(__file__).resolve().parents[2] / "docs" / "runner-lane-baseline.md"
ROW = re.compile(r"^\| ([RSMD]\d+) \| (\w+) \| (\w+) \| [^|]+ \| (\w+) \| (\w+) \| ([^|]+) \|$")


@dataclass(frozen=True)
class Case:
    declared: LanesFile
    desired: RunnerLaneMaintainerDesiredState
    observed: RunnerLaneMaintainerObservedState
    policy: PlanPolicy = field(default_factory=PlanPolicy)


def on(observed: RunnerLaneMaintainerObservedState, **policy: object) -> Case:
    return Case(f.declared(), f.desired(), observed, PlanPolicy.model_validate(policy))


def with_desired(desired: RunnerLaneMaintainerDesiredState, **obs: object) -> Case:
    """A lane declared (unchecked) as given, observed as absent."""
    declared = LanesFile(policy=f.declared().policy, lanes=(desired,))
    return Case(declared, desired, f.absent(**obs))


def declared_with(toml_lane: str) -> Case:
    declared = f.declared(lane_toml=toml_lane)
    return Case(declared, declared.lanes[0], f.absent())


def lane_toml(old: str, new: str) -> str:
    assert old in f.LANE_TOML
    return f.LANE_TOML.replace(old, new)


RESTART = Operation.RESTART
REMOVE = Operation.REMOVE
docker = BaselineFinding(code="docker_credentials_shared", message="other user's auth")
dir_missing = BaselineFinding(code="runner_directory_missing", message="x", fixable_by_apply=True)
unmanaged_labels = tuple(x for x in f.LABELS if x != "launchplane-managed")
idle_offline = f.runner(status="offline")
apply = {"mode": "apply", "idempotency_key": "k-1", "confirmation": f"apply {f.LANE}"}

behind = RunnerVersions(installed="2.329.0", installed_source="archive", latest="2.330.0")


def pinned(version: str, observed: RunnerLaneMaintainerObservedState) -> Case:
    """The lane with `runner_version_policy` pinned to `version`."""
    desired = f.desired(runner_version_policy=version)
    return Case(LanesFile(policy=f.declared().policy, lanes=(desired,)), desired, observed)


no_agent_id = RunnerFile(agent_name=f.LANE, git_hub_url=f"https://github.com/{f.REPO}")


def problem(code: str) -> GithubProblem:
    return GithubProblem(code=code, message="HTTP 503", retry_at=f.NOW)


SCENARIOS: dict[str, Callable[[], Case]] = {
    "R1": lambda: on(f.absent()),
    "R2": lambda: on(f.absent(local=f.local(registered=False))),
    "R3": lambda: on(f.absent(github=f.inventory(idle_offline))),
    "R4": lambda: on(f.absent(github=f.inventory(f.runner()))),
    "R5": lambda: on(f.absent(github=f.inventory(f.runner(labels=unmanaged_labels)))),
    "R6": lambda: on(f.observed(github=f.inventory())),
    "R7": lambda: on(f.observed(github=f.inventory(), local=f.local(registered=False))),
    "R8": lambda: on(f.observed()),
    "R9": lambda: on(f.observed(unit=f.unit(active=False))),
    "R10": lambda: on(f.observed(github=f.inventory(f.runner(labels=f.LABELS[:-1])))),
    "R11": lambda: on(f.observed(github=f.inventory(f.runner(labels=unmanaged_labels)))),
    "R12": lambda: on(f.observed(github=f.inventory(f.runner(), f.runner(runner_id=43)))),
    "R13": lambda: on(f.observed(local=f.local(agent_name="someone-else"))),
    "R14": lambda: on(f.observed(unit=f.unit(marked=False))),
    "R15": lambda: on(f.observed(local=f.local(is_symlink=True))),
    "R16": lambda: on(f.observed(github=None)),
    "R17": lambda: on(f.observed(local=f.local(url="https://github.com/evil/repo"))),
    "R18": lambda: on(
        f.absent(local=f.local(registered=False, stale_migrated_files=(".runner_migrated",)))
    ),
    "R19": lambda: on(f.observed(github=None, github_problem=problem("github_unavailable"))),
    "R20": lambda: on(f.observed(github=None, github_problem=problem("github_auth_failed"))),
    "R21": lambda: on(f.observed(github=None, github_problem=problem("github_rate_limited"))),
    "R22": lambda: on(f.observed(local=f.local().model_copy(update={"runner_file": no_agent_id}))),
    "R24": lambda: on(f.observed(runner_versions=behind)),
    "R25": lambda: pinned(
        "2.329.0",
        f.observed(github=f.inventory(f.runner(status="offline")), runner_versions=behind),
    ),
    "R23": lambda: on(
        f.observed(unit=f.unit(active=False, load_state="masked", unit_file_state="masked"))
    ),
    "S1": lambda: on(f.observed(), operation=RESTART),
    "S2": lambda: on(
        f.observed(github=f.inventory(f.runner(busy=True))),
        operation=RESTART,
        drain_wait_seconds=0,
    ),
    "S3": lambda: on(
        f.observed(github=f.inventory(f.runner(busy=True))),
        operation=RESTART,
        drain_confirmed=True,
    ),
    "S7": lambda: on(f.observed(github=f.inventory(f.runner(busy=True))), operation=RESTART),
    "S4": lambda: on(f.absent(), operation=RESTART),
    "S5": lambda: on(
        f.observed(github=f.inventory(f.runner(labels=unmanaged_labels))), operation=RESTART
    ),
    "S6": lambda: on(f.observed(unit=f.unit(active=False)), operation=RESTART),
    "M1": lambda: on(f.observed(), operation=REMOVE),
    "M2": lambda: on(
        f.observed(github=f.inventory(f.runner(busy=True))), operation=REMOVE, drain_wait_seconds=0
    ),
    "M9": lambda: on(f.observed(github=f.inventory(f.runner(busy=True))), operation=REMOVE),
    "M3": lambda: on(f.absent(), operation=REMOVE),
    "M4": lambda: on(f.absent(github=f.inventory(idle_offline)), operation=REMOVE),
    "M5": lambda: on(f.observed(unit=f.unit(marked=False)), operation=REMOVE),
    "M6": lambda: on(
        f.absent(github=f.inventory(f.runner(labels=unmanaged_labels, status="offline"))),
        operation=REMOVE,
    ),
    "M7": lambda: on(f.observed(github=f.inventory()), operation=REMOVE),
    "M8": lambda: on(f.observed(baseline=None), operation=REMOVE),
    "D1": lambda: with_desired(f.desired(repository="someone/else")),
    "D2": lambda: declared_with(
        lane_toml('host_name = "chris-testing"', 'host_name = "other-host"').replace(
            '"chris-testing", "cm-website"', '"other-host", "cm-website"'
        )
    ),
    "D3": lambda: with_desired(f.desired(registration_root="/opt/runners")),
    "D4": lambda: with_desired(f.desired(labels=unmanaged_labels)),
    "D5": lambda: Case(f.declared(extra_lanes=f.LANE_TOML), f.declared().lanes[0], f.absent()),
    "D6": lambda: with_desired(f.desired(service_user="nobody")),
    "D7": lambda: on(f.observed(local=f.local(owner=1234))),
    "D8": lambda: on(f.observed(unit=f.unit(main_pid_uid=0))),
    "D9": lambda: with_desired(f.desired(systemd_unit_name="ssh.service")),
    "D10": lambda: with_desired(
        f.desired(lane_name="../etc", systemd_unit_name="launchplane-runner@../etc.service"),
        lane_name="../etc",
        unit=f.unit(present=False).model_copy(
            update={"unit_name": "launchplane-runner@../etc.service"}
        ),
    ),
    "D11": lambda: with_desired(f.desired(registration_root="/srv/launchplane/runners/../../etc")),
    "D12": lambda: with_desired(f.desired(registration_root="/")),
    "D13": lambda: on(f.observed(baseline=None)),
    "D14": lambda: on(f.observed(baseline=f.baseline(docker))),
    "D15": lambda: on(f.absent(baseline=f.baseline(dir_missing))),
    "D16": lambda: on(f.absent(), mode="apply", confirmation=f"apply {f.LANE}"),
    "D17": lambda: on(f.absent(), mode="apply", idempotency_key="k-1", confirmation="yes"),
    "D18": lambda: on(f.absent(), **apply),
    "D19": lambda: on(f.observed(observed_at=f.NOW - timedelta(hours=1))),
    "D20": lambda: on(f.observed(host_name="another-host")),
    "D21": lambda: on(f.absent(service_user_uid=None)),
    "D22": lambda: Case(f.declared(), f.desired(apply=True), f.observed()),
}


def table_rows() -> list[tuple[str, str, str, str, str, tuple[str, ...]]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line.strip())
        if m:
            cid, shape, op, status, action, blockers = m.groups()
            codes = tuple(c.strip() for c in blockers.split(",") if c.strip() not in {"—", ""})
            rows.append((cid, shape, op, status, action, codes))
    return rows


def test_every_row_has_a_scenario_and_every_scenario_a_row() -> None:
    ids = [row[0] for row in table_rows()]
    assert len(ids) == len(set(ids)), "duplicate row ids in the doc"
    assert set(ids) == set(SCENARIOS)


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: row[0])
def test_row(row: tuple[str, str, str, str, str, tuple[str, ...]]) -> None:
    cid, shape, operation, status, action, codes = row
    case = SCENARIOS[cid]()
    assert case.policy.operation.value == operation
    result = plan(case.declared, case.desired, case.observed, case.policy, f.NOW)
    assert result.shape is Shape(shape)
    assert (result.status, result.action.value) == (status, action)
    # the codes in the documented order: root cause first (agent/blockers.py)
    assert tuple(dict.fromkeys(b.code for b in result.blockers)) == codes, result.blockers
    assert result.next_steps or status == "ready"
    if status == "blocked":
        assert result.steps == ()  # a blocked plan does nothing


def test_create_selected_for_zero_runners_and_no_local_service() -> None:
    result = plan(f.declared(), f.desired(), f.absent(), PlanPolicy(), f.NOW)
    assert (result.status, result.action.value) == ("ready", "create")
    assert result.steps[0] is Step.FETCH_REGISTRATION_TOKEN
    assert result.steps[-1] is Step.VERIFY
    assert result.needs_registration_token


def test_remove_asks_github_first_then_tears_down_in_order() -> None:
    """GitHub's DELETE is the first step: a credential that may not remove fails it before
    anything local is touched (no half-removed lane), and no remove token is ever fetched."""
    result = plan(f.declared(), f.desired(), f.observed(), PlanPolicy(operation=REMOVE), f.NOW)
    assert result.steps == (
        Step.DELETE_GITHUB_RUNNER,
        Step.STOP,
        Step.DISABLE,
        Step.REMOVE_UNIT,
        Step.DAEMON_RELOAD,
        Step.UNREGISTER_RUNNER,
        Step.REMOVE_DIRECTORY,
    )


def test_a_drained_busy_runner_is_stopped_before_github_deletes_it() -> None:
    busy = f.observed(github=f.inventory(f.runner(busy=True)))
    policy = PlanPolicy(operation=REMOVE, drain_confirmed=True)
    result = plan(f.declared(), f.desired(), busy, policy, f.NOW)
    assert result.steps.index(Step.STOP) < result.steps.index(Step.DELETE_GITHUB_RUNNER)


def test_adopting_a_local_only_lane_stops_and_unregisters_before_creating() -> None:
    result = plan(f.declared(), f.desired(), f.observed(github=f.inventory()), PlanPolicy(), f.NOW)
    assert result.steps[:2] == (Step.STOP, Step.UNREGISTER_RUNNER)
    assert Step.FETCH_REMOVE_TOKEN not in result.steps
    assert Step.REGISTER_RUNNER in result.steps


def test_blockers_are_sorted_and_each_has_a_next_step() -> None:
    case = SCENARIOS["D10"]()
    result = plan(case.declared, case.desired, case.observed, case.policy, f.NOW)
    keys = [blocker_key(b.code, b.message) for b in result.blockers]
    assert keys == sorted(keys)
    assert "plan again" not in result.next_steps or len(result.next_steps) > 1
