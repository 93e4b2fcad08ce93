"""The level-based schedule: each lane says when it wants to be looked at again, and a pass
looks only at the lanes that are due (one conditional GitHub listing per repository)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from agent.contracts import GithubRunner
from agent.github.errors import GitHubRateLimited
from agent.github.models import RateLimit
from agent.reconcile import Reconciler
from agent.schedule import Cadence, Due, Schedule
from agent.schedule_file import ScheduleFile
from tests.agent.fakes import NOW, agent_for

STEADY = Cadence().steady
CONVERGING = Cadence().converging


class Time:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def due(agent: Reconciler, lane: str) -> Due:
    return agent.schedule.load().lanes[lane]


def listings(agent: Reconciler) -> int:
    return agent.observer.github.stats.requests


def test_a_converging_lane_is_due_again_within_seconds_then_steady(tmp_path: Path) -> None:
    time = Time()
    agent, _, declared = agent_for(tmp_path, clock=time, apply=True)
    lane = declared.lanes[0].lane_name
    (created,) = agent.reconcile_pass()
    assert created.status == "completed"
    assert due(agent, lane) == Due(
        at=NOW + CONVERGING, reason="converging", desired_hash=due(agent, lane).desired_hash
    )
    assert timedelta(seconds=30) >= CONVERGING

    time.advance(CONVERGING.total_seconds() - 1)
    requests = listings(agent)
    assert agent.reconcile_pass() == []  # not due: nothing read, nothing written
    assert listings(agent) == requests

    time.advance(1)
    (settled,) = agent.reconcile_pass()  # the first supervised pass: verified, nothing changed
    assert settled.status == "completed"
    assert due(agent, lane).reason == "steady"
    assert due(agent, lane).at == time.now + STEADY


def test_a_steady_lane_is_looked_at_once_per_steady_interval_with_one_listing(
    tmp_path: Path,
) -> None:
    time = Time()
    agent, _, declared = agent_for(tmp_path, clock=time, apply=False)
    lane = declared.lanes[0].lane_name
    looked: list[int] = []
    for _ in range(int(STEADY.total_seconds() // 30) * 2 + 1):  # a 30 s timer, two intervals
        before = listings(agent)
        if agent.reconcile_pass():
            looked.append(listings(agent) - before)
        time.advance(30)
    assert looked == [1, 1, 1]  # at 0, 5 and 10 minutes; one conditional listing each
    assert due(agent, lane).reason == "steady"


def test_a_rate_limited_lane_is_not_due_before_the_reset(tmp_path: Path) -> None:
    time = Time()
    agent, world, declared = agent_for(tmp_path, clock=time, apply=True)
    lane = declared.lanes[0].lane_name
    github = agent.observer.github

    def limited(repository: str) -> list[GithubRunner]:
        github.stats.requests += 1
        raise GitHubRateLimited(
            "secondary rate limit", status=403, delay=600, retry_at=time() + timedelta(seconds=600)
        )

    github.list_runners = limited  # type: ignore[method-assign]
    agent.reconcile_pass()
    assert due(agent, lane).reason == "rate_limited"
    assert due(agent, lane).at == NOW + timedelta(seconds=600)

    time.advance(599)
    requests = listings(agent)
    assert agent.reconcile_pass() == []
    assert listings(agent) == requests
    time.advance(1)
    assert len(agent.reconcile_pass()) == 1
    assert world.tokens_issued == []  # blocked while GitHub could not be read: nothing applied


def test_an_exhausted_budget_waits_for_its_reset(tmp_path: Path) -> None:
    time = Time()
    agent, _, declared = agent_for(tmp_path, clock=time, apply=False)
    reset = NOW + timedelta(minutes=40)
    agent.observer.github.stats.rate_limit = RateLimit(
        limit=5000, remaining=0, used=5000, reset=int(reset.timestamp()), resource="core"
    )
    agent.reconcile_pass()
    next_look = due(agent, declared.lanes[0].lane_name)
    assert (next_look.reason, next_look.at) == ("rate_limited", reset)


def test_a_changed_declaration_is_due_at_once_and_everything_is_due_without_a_schedule(
    tmp_path: Path,
) -> None:
    schedule = Schedule(lanes={"a": Due(at=NOW + STEADY, reason="steady", desired_hash="h1")})
    assert not schedule.is_due("a", "h1", NOW)
    assert schedule.is_due("a", "h2", NOW)  # lanes.toml changed: look now
    assert schedule.is_due("b", "h1", NOW)  # never looked at
    assert schedule.is_due("a", "h1", NOW + STEADY)
    assert schedule.updated({}, declared={"b"}).lanes == {}  # undeclared lanes are forgotten


def test_the_schedule_file_round_trips_and_a_damaged_one_makes_every_lane_due(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "schedule.json"
    store = ScheduleFile(path)
    assert store.load() == Schedule()
    schedule = Schedule(lanes={"a": Due(at=NOW, reason="converging", desired_hash="h")})
    store.save(schedule)
    assert store.load() == schedule
    assert path.stat().st_mode & 0o777 == 0o640
    path.write_text("{not json")
    assert store.load() == Schedule()


def test_world_is_untouched_by_a_pass_that_is_not_due(tmp_path: Path) -> None:
    time = Time()
    agent, world, _ = agent_for(tmp_path, clock=time, apply=True)
    agent.reconcile_pass()
    calls, records = list(world.helper_calls), len(list(agent.recorder.store.records()))
    assert calls
    agent.reconcile_pass()
    assert world.helper_calls == calls
    assert len(list(agent.recorder.store.records())) == records
