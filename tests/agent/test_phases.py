"""The phases one by one: apply's step table and reload, verify's clock, one plan per pass."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent import reconcile
from agent.apply import HELPER_VERBS, STEP_HANDLERS
from agent.contracts import GithubInventory, PlanPolicy, Step
from agent.planner import plan, retarget
from agent.verify import Verifier
from helper.contract.protocol import VERBS, VerbResult
from tests.agent.fakes import NOW, agent_for
from tests.planner import factories as f


def test_every_step_but_verify_has_a_handler_and_helper_steps_name_real_verbs() -> None:
    assert set(STEP_HANDLERS) == set(Step) - {Step.VERIFY}
    assert set(HELPER_VERBS.values()) <= set(VERBS)


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


class NeverOnline:
    calls = 0

    def runners_named(self, repository: str, name: str) -> GithubInventory:
        self.calls += 1
        return f.inventory(f.runner(status="offline"))


def test_wait_online_gives_up_at_the_timeout_on_the_injected_clock(tmp_path: Path) -> None:
    agent, _, declared = agent_for(tmp_path)
    time = FakeTime()
    github = NeverOnline()
    verifier = Verifier(
        declared=declared,
        github=github,  # type: ignore[arg-type]
        observe_one=agent.observer.observe_one,
        clock=time.clock,
        sleep=time.sleep,
        online_timeout=10.0,
        poll_interval=3.0,
    )
    inventory = verifier.wait_online(declared.lanes[0])
    assert inventory is not None
    assert inventory.runners[0].status == "offline"
    assert time.slept == [3.0, 3.0, 3.0, 3.0]  # 0, 3, 6, 9 s: not yet; 12 s: past the deadline
    assert github.calls == 5
    assert time.now - NOW == timedelta(seconds=12)


def test_a_dry_plan_retargeted_to_apply_equals_planning_in_apply_mode() -> None:
    declared, desired = f.declared(), f.desired()
    for observed in (f.absent(), f.observed()):
        dry = plan(declared, desired, observed, PlanPolicy(), f.NOW)
        for confirmation in (f"apply {f.LANE}", None):
            policy = PlanPolicy(mode="apply", idempotency_key="k", confirmation=confirmation)
            assert retarget(dry, policy) == plan(declared, desired, observed, policy, f.NOW)


def test_retarget_refuses_to_change_the_operation() -> None:
    dry = plan(f.declared(), f.desired(), f.observed(), PlanPolicy(), f.NOW)
    with pytest.raises(ValueError, match="only the mode"):
        retarget(dry, PlanPolicy(mode="apply", drain_confirmed=True))


def test_the_planner_runs_once_per_lane_per_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, _, _ = agent_for(tmp_path, apply=True)
    calls: list[str] = []

    def counting(*args: Any) -> Any:
        calls.append(args[1].lane_name)
        return plan(*args)

    monkeypatch.setattr(reconcile, "plan", counting)
    records = agent.reconcile_pass()
    assert [r.status for r in records] == ["completed"]
    assert calls == [f.LANE]


def helper_answers(agent: Any, answers: dict[str, dict[str, Any]]) -> list[str]:
    """Make the fake helper answer some verbs as given; returns the verbs called."""
    fake = agent.applier.helper
    real = fake.call
    called: list[str] = []

    def call(verb: str, lane: str, **kw: Any) -> VerbResult:
        called.append(verb)
        result = real(verb, lane, **kw)
        return VerbResult.from_result(answers[verb]) if verb in answers else result

    fake.call = call
    return called


@pytest.mark.parametrize(
    ("answer", "reloaded"),
    [
        ({"changed": False, "daemon_reload_needed": False}, False),
        ({"changed": False, "daemon_reload_needed": True}, True),
        ({"changed": True, "daemon_reload_needed": True}, True),
        ({}, True),  # an answer that does not say: reload (fail safe)
    ],
)
def test_the_agent_honours_the_helpers_reload_needed(
    tmp_path: Path, answer: dict[str, Any], reloaded: bool
) -> None:
    agent, _, declared = agent_for(tmp_path)
    called = helper_answers(agent, {"install-or-update-unit": answer})
    policy = PlanPolicy(mode="apply", idempotency_key="k", confirmation=f"apply {f.LANE}")
    record = agent.run(declared.lanes[0], policy)
    assert "install-or-update-unit" in called
    assert ("daemon-reload" in called) is reloaded
    steps = {s["step"]: s for s in record.provider_evidence["steps"]}
    skipped = steps["daemon_reload"]["result"] == {"skipped": "drop-in unchanged"}
    assert skipped is not reloaded
