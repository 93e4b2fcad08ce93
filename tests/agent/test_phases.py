"""The phases one by one: apply's step table and reload, verify's clock, one plan per pass."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent import reconcile
from agent.apply import HELPER_VERBS, STEP_HANDLERS
from agent.contracts import Gate, GithubInventory, PlanPolicy, Step
from agent.github.models import RequestStats
from agent.planner import plan, retarget
from agent.verify import Verifier
from helper.contract.dropin import rendered_hash
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
    def __init__(self) -> None:
        self.fresh: list[bool] = []
        self.stats = RequestStats()

    def runners_named(self, repository: str, name: str, *, fresh: bool = False) -> GithubInventory:
        self.fresh.append(fresh)
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
        first_poll=1.0,
    )
    inventory = verifier.wait_online(declared.lanes[0])
    assert inventory is not None
    assert inventory.runners[0].status == "offline"
    # reads at 0, 1, 2.25, 3.8125, 5.77, 8.21 s: not yet; 11.21 s: past the deadline
    assert time.slept == [1.0, 1.25, 1.5625, 1.953125, 2.44140625, 3.0]
    assert github.fresh == [True] + [False] * 6  # one fresh read, then revalidations
    assert time.now - NOW == timedelta(seconds=sum(time.slept))


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


class AlwaysOnline:
    def __init__(self) -> None:
        self.fresh: list[bool] = []
        self.stats = RequestStats()

    def runners_named(self, repository: str, name: str, *, fresh: bool = False) -> GithubInventory:
        self.fresh.append(fresh)
        return f.inventory(f.runner())


def unit(**changes: Any) -> Any:
    """The lane's unit as it is when proven, with the drop-in hash verify expects."""
    return f.unit(dropin_hash=rendered_hash(f.desired()), **changes)


def observations(*units: Any) -> Any:
    """observe_one that answers one prepared observation per call."""
    queue = [
        f.observed(baseline=f.baseline().model_copy(update={"evidence": {"x": "y"}}), unit=u)
        for u in units
    ]

    def observe_one(_desired: Any) -> Any:
        return queue.pop(0)

    return observe_one


def stability_verifier(time: FakeTime, github: AlwaysOnline, *units: Any) -> Verifier:
    return Verifier(
        declared=f.declared(),
        github=github,  # type: ignore[arg-type]
        observe_one=observations(*units),
        clock=time.clock,
        sleep=time.sleep,
        online_timeout=10.0,
        poll_interval=2.0,
        stability_window=4.0,
    )


def test_completed_needs_two_observations_across_the_stability_window() -> None:
    time, github = FakeTime(), AlwaysOnline()
    verdict = stability_verifier(time, github, unit(), unit()).verify(f.desired(), {})
    assert verdict.status == "completed", verdict.error
    assert time.slept == [4.0]  # the window, on fake time
    assert github.fresh == [True]  # after a change, GitHub is read without If-None-Match
    assert ("stability_window", 4.0) in verdict.timings


@pytest.mark.parametrize(
    "second",
    [
        {"n_restarts": 1},  # systemd restarted it in between: a crash loop sampled while up
        {"main_pid": 5151},
        {"active_enter_monotonic": 99},
        {"active_state": "activating", "sub_state": "auto-restart"},
    ],
)
def test_a_unit_that_did_not_stay_up_in_the_window_is_not_completed(
    second: dict[str, Any],
) -> None:
    time, github = FakeTime(), AlwaysOnline()
    verifier = stability_verifier(time, github, unit(), unit(**second))
    verdict = verifier.verify(f.desired(), {})
    assert verdict.status == "failed"
    assert verdict.failed_gate is Gate.UNIT_ACTIVE


def test_a_gate_that_failed_on_the_first_sample_fails_the_verdict() -> None:
    time, github = FakeTime(), AlwaysOnline()
    first = unit(main_process=f.process(uids=(0, 0, 0, 0)))
    verdict = stability_verifier(time, github, first, unit()).verify(f.desired(), {})
    assert verdict.status == "failed"
    assert verdict.failed_gate is Gate.PROCESS_USER
    assert "first sample" in (verdict.error or "")


def test_a_silent_listener_journal_is_read_again_a_bounded_number_of_times(
    tmp_path: Path,
) -> None:
    """journald may write the listener's "Listening" line after the agent's read: a readable
    but silent journal is observed again (1, 2, 3 s), a line that arrives settles it, and one
    that never does stays silent (the gate then says session_unproven)."""
    from agent.contracts import ListenerLog, RunnerLaneMaintainerObservedState

    agent, _, declared = agent_for(tmp_path)
    silent = f.observed(unit=f.unit(listener_log=ListenerLog()))
    heard = f.observed(unit=f.unit(listener_log=ListenerLog(listening=True)))
    for answers, slept, last in (
        ([heard], [1.0], heard),
        ([silent, silent, silent], [1.0, 2.0, 3.0], silent),
    ):
        queue = list(answers)
        time = FakeTime()

        def observe_one(_desired: Any, q: list[RunnerLaneMaintainerObservedState] = queue) -> Any:
            return q.pop(0)

        verifier = Verifier(
            declared=declared,
            github=NeverOnline(),  # type: ignore[arg-type]
            observe_one=observe_one,
            clock=time.clock,
            sleep=time.sleep,
            online_timeout=0.0,
            poll_interval=2.0,
        )
        assert verifier.settled(declared.lanes[0], silent) == last
        assert time.slept == slept
    # a conflict, or a journal that could not be read, is judged at once: no re-read
    for judged in (ListenerLog(session_conflicts=2), ListenerLog(unreadable="no group")):
        time = FakeTime()
        verifier = Verifier(
            declared=declared,
            github=NeverOnline(),  # type: ignore[arg-type]
            observe_one=agent.observer.observe_one,
            clock=time.clock,
            sleep=time.sleep,
            online_timeout=0.0,
            poll_interval=2.0,
        )
        state = f.observed(unit=f.unit(listener_log=judged))
        assert verifier.settled(declared.lanes[0], state) is state
        assert time.slept == []
