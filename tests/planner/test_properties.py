"""Properties over generated states: the planner never claims completion and always fails closed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.contracts import (
    BaselineFinding,
    Gate,
    GateResult,
    GithubInventory,
    Operation,
    PlanPolicy,
    RunnerLaneMaintainerAuditRecord,
    RunnerLaneMaintainerObservedState,
    Step,
)
from agent.planner import plan
from tests.planner import factories as f

runners = st.builds(
    f.runner,
    runner_id=st.integers(1, 5),
    status=st.sampled_from(["online", "offline"]),
    busy=st.booleans(),
    labels=st.lists(st.sampled_from([*f.LABELS, "gpu", "LAUNCHPLANE"]), unique=True).map(tuple),
    name=st.sampled_from([f.LANE, f.LANE]),
)
inventories = st.one_of(
    st.none(),
    st.lists(runners, max_size=3).map(
        lambda rs: GithubInventory(runners=tuple(rs), total_count=len(rs))
    ),
)
locals_ = st.builds(
    f.local,
    exists=st.booleans(),
    registered=st.booleans(),
    agent_name=st.sampled_from([f.LANE, "other"]),
    url=st.sampled_from([f"https://github.com/{f.REPO}", "https://github.com/x/y"]),
    owner=st.sampled_from([f.UID, 0, 1000]),
    is_symlink=st.booleans(),
    stale_migrated_files=st.sampled_from([(), (".runner_migrated",)]),
)
units = st.builds(
    f.unit,
    present=st.booleans(),
    active=st.booleans(),
    marked=st.booleans(),
    main_pid_uid=st.sampled_from([f.UID, 0]),
)
findings = st.lists(
    st.builds(
        BaselineFinding,
        code=st.sampled_from(["docker_credentials_shared", "runner_directory_missing"]),
        message=st.just("x"),
        fixable_by_apply=st.booleans(),
    ),
    max_size=2,
)
baselines = st.one_of(st.none(), findings.map(lambda fs: f.baseline(*fs)))
observations = st.builds(
    f.observed,
    host_name=st.sampled_from([f.HOST, "elsewhere"]),
    observed_at=st.sampled_from([f.NOW, f.NOW - timedelta(hours=2)]),
    service_user_uid=st.sampled_from([f.UID, None]),
    github=inventories,
    local=locals_,
    unit=units,
    baseline=baselines,
)
policies = st.builds(
    PlanPolicy,
    operation=st.sampled_from(list(Operation)),
    mode=st.sampled_from(["dry_run", "apply"]),
    idempotency_key=st.sampled_from([None, "", "key-1"]),
    confirmation=st.sampled_from(
        [None, f"apply {f.LANE}", f"restart {f.LANE}", f"remove {f.LANE}", "yes"]
    ),
    drain_confirmed=st.booleans(),
)
desireds = st.sampled_from(
    [
        f.desired(),
        f.desired(repository="evil/repo"),
        f.desired(registration_root="/"),
        f.desired(labels=f.LABELS[:2]),
        f.desired(service_user="nobody"),
    ]
)

BIG = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@BIG
@given(desired=desireds, observed=observations, policy=policies)
def test_the_planner_never_produces_completed(
    desired: object, observed: RunnerLaneMaintainerObservedState, policy: PlanPolicy
) -> None:
    declared = f.declared()
    result = plan(declared, desired, observed, policy, f.NOW)  # type: ignore[arg-type]
    assert result.status in {"ready", "blocked"}
    assert "completed" not in result.model_dump_json()
    # A planned record is the only record a plan alone can make; "completed" is refused.
    common: dict[str, Any] = {
        "record_id": "r",
        "idempotency_key": None,
        "lane_name": f.LANE,
        "created_at": f.NOW,
        "desired": desired,
        "observed_pre": observed,
        "plan": result,
    }
    RunnerLaneMaintainerAuditRecord(status="planned", **common)
    with pytest.raises(ValidationError, match="every gate"):
        RunnerLaneMaintainerAuditRecord(status="completed", **common)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observed=observations, policy=policies)
def test_ready_only_when_every_precondition_holds(
    observed: RunnerLaneMaintainerObservedState, policy: PlanPolicy
) -> None:
    result = plan(f.declared(), f.desired(), observed, policy, f.NOW)
    if result.status == "ready":
        assert observed.host_name == f.HOST
        assert observed.observed_at == f.NOW
        runners_ = observed.github.runners if observed.github else ()
        assert observed.github is not None
        assert len(runners_) <= 1
        assert all("launchplane-managed" in r.label_names for r in runners_)
        assert not observed.local.is_symlink
        if policy.mode == "apply":
            assert policy.idempotency_key
            assert policy.confirmation
        if policy.operation is not Operation.REMOVE:
            assert observed.baseline is not None
            assert observed.service_user_uid is not None
        if policy.operation is not Operation.RECONCILE and not policy.drain_confirmed:
            # a busy runner is never acted on: the plan first waits for its job to end
            assert not any(r.busy for r in runners_) or result.steps[0] is Step.WAIT_IDLE
    else:
        assert result.blockers
        assert result.next_steps


def test_completed_needs_every_gate_and_a_post_observation() -> None:
    result = plan(f.declared(), f.desired(), f.observed(), PlanPolicy(), f.NOW)
    gates = tuple(GateResult(gate=g, passed=True, detail="ok") for g in Gate)
    common: dict[str, Any] = {
        "record_id": "r",
        "idempotency_key": "k",
        "lane_name": f.LANE,
        "created_at": f.NOW,
        "desired": f.desired(),
        "observed_pre": f.observed(),
        "plan": result,
    }
    ok = RunnerLaneMaintainerAuditRecord(
        status="completed", gates=gates, observed_post=f.observed(), **common
    )
    assert ok.status == "completed"
    with pytest.raises(ValidationError):
        RunnerLaneMaintainerAuditRecord(
            status="completed", gates=gates[:-1], observed_post=f.observed(), **common
        )
    with pytest.raises(ValidationError):
        RunnerLaneMaintainerAuditRecord(status="completed", gates=gates, **common)
    with pytest.raises(ValidationError, match="names its failed gate"):
        RunnerLaneMaintainerAuditRecord(status="failed", **common)
