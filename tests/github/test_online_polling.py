"""Verify's wait for `online` against the GitHub emulator on fake time: seen within one short
interval of GitHub reporting it, every read after the first a free 304, and bounded."""

from __future__ import annotations

from itertools import accumulate, islice, takewhile

import pytest

from agent.github import GitHubClient
from agent.verify import FIRST_POLL, OnlineWait, Verifier, poll_waits
from tests.emulators.github_api import GitHubEmulator
from tests.github.conftest import MakeClient, Sleeps
from tests.planner import factories as f

LIST = "actions/list-self-hosted-runners-for-repo"
POLL_INTERVAL = 2.0  # the longest wait, as production wires it


def unused(_desired: object) -> object:
    raise AssertionError("wait_online observes nothing but GitHub")


def verifier(client: GitHubClient, sleeps: Sleeps, timeout: float) -> Verifier:
    return Verifier(
        declared=f.declared(),
        github=client,
        observe_one=unused,  # type: ignore[arg-type]
        clock=sleeps.clock.now,
        sleep=sleeps,
        online_timeout=timeout,
        poll_interval=POLL_INTERVAL,
    )


class GoesOnlineAt(Sleeps):
    """The injected sleep; the lane's runner turns online once the fake clock reaches `at`."""

    def __init__(self, base: Sleeps, emulator: GitHubEmulator, runner_id: int, at: float):
        super().__init__(base.clock)
        self.emulator, self.runner_id, self.at = emulator, runner_id, at

    def __call__(self, seconds: float) -> None:
        super().__call__(seconds)
        if self.clock.time() >= self.at:
            with self.emulator.state.mutate() as world:
                world.runners[self.runner_id].forced_status = "online"


def lane_runner(emulator: GitHubEmulator, status: str) -> int:
    """The example lane's runner in the emulator, its status pinned: its id."""
    desired = f.desired()
    emulator.state.add_repository(desired.scope)
    return emulator.state.add_runner(desired.scope, desired.lane_name, status=status).id


def _bucket_used(emulator: GitHubEmulator) -> int:
    """Rate-limit units the emulator charged, every identity."""
    return sum(b.used for b in emulator.state.world.buckets.values())


@pytest.mark.parametrize("after", [0.1, 0.6, 1.7, 3.0, 9.0])
def test_online_is_seen_within_one_short_interval_and_the_polls_in_between_are_free(
    emulator: GitHubEmulator, make_client: MakeClient, sleeps: Sleeps, after: float
) -> None:
    desired = f.desired()
    runner_id = lane_runner(emulator, "offline")
    start = sleeps.clock.time()
    timed = GoesOnlineAt(sleeps, emulator, runner_id, start + after)
    client = make_client()
    check = verifier(client, timed, timeout=120.0)
    units_before, log_before = _bucket_used(emulator), len(emulator.requests(LIST))
    spent = OnlineWait()

    inventory = check.wait_online(desired, spent)

    assert inventory is not None
    assert inventory.runners[0].status == "online"
    seen = sleeps.clock.time() - start
    last_wait = timed.waits[-1]
    # the read that saw it came at most one wait after GitHub reported it, and that wait is
    # shorter than the old fixed 2 s interval while a runner usually connects
    assert after <= seen < after + last_wait
    assert last_wait <= POLL_INTERVAL
    assert timed.waits == list(islice(poll_waits(FIRST_POLL, POLL_INTERVAL), len(timed.waits)))
    if after < 2.0:
        assert last_wait < POLL_INTERVAL
    # the emulator's log: one fresh read, 304s while nothing changed, one changed answer
    statuses = [r["status"] for r in emulator.requests(LIST)[log_before:]]
    assert statuses == [200] + [304] * (len(statuses) - 2) + [200], statuses
    assert len(statuses) >= 2
    assert spent.as_evidence() == {
        "reads": len(statuses),
        "not_modified": len(statuses) - 2,
        "changed": 2,
        "rate_limit_used": 2,
    }
    # GitHub charged exactly the two 200s: the 304s left the rate limit unchanged
    assert _bucket_used(emulator) - units_before == 2


def test_a_runner_that_never_comes_online_costs_one_unit_and_bounded_reads(
    emulator: GitHubEmulator, make_client: MakeClient, sleeps: Sleeps
) -> None:
    desired = f.desired()
    lane_runner(emulator, "offline")
    timeout = 60.0
    check = verifier(make_client(), sleeps, timeout=timeout)
    units_before = _bucket_used(emulator)
    start = sleeps.clock.time()
    spent = OnlineWait()

    inventory = check.wait_online(desired, spent)

    assert inventory is not None
    assert inventory.runners[0].status == "offline"
    # the schedule: short at first, then every poll_interval; it stops at the deadline
    ends = accumulate(poll_waits(FIRST_POLL, POLL_INTERVAL))  # clock after each wait
    starts = takewhile(lambda t: t < timeout, accumulate(poll_waits(FIRST_POLL, POLL_INTERVAL)))
    expected = [end - start for start, end in zip([0.0, *starts], ends, strict=False)]
    assert sleeps.waits == expected
    assert max(sleeps.waits) == POLL_INTERVAL
    assert timeout <= sleeps.clock.time() - start < timeout + POLL_INTERVAL
    assert spent.reads == len(expected) + 1
    assert spent.reads < timeout / POLL_INTERVAL + 10  # bounded: mostly 2 s apart
    assert spent.not_modified == spent.reads - 1
    assert _bucket_used(emulator) - units_before == 1


def test_a_failed_first_read_keeps_the_next_one_fresh(
    emulator: GitHubEmulator, make_client: MakeClient, sleeps: Sleeps
) -> None:
    """No 304 may stand for an answer this wait never read fresh."""
    desired = f.desired()
    lane_runner(emulator, "online")
    client = make_client(max_attempts=1)
    client.runners_named(desired.scope, desired.lane_name)  # an earlier answer in the ETag cache
    emulator.fault("status", status=503, operation=LIST, count=1)
    before = len(emulator.requests(LIST))

    inventory = verifier(client, sleeps, timeout=10.0).wait_online(desired)

    assert inventory is not None
    assert inventory.runners[0].status == "online"
    assert [r["status"] for r in emulator.requests(LIST)[before:]] == [503, 200]
