"""Verify: wait (on the injected clock) for the runner online, observe again, check every gate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from agent.contracts import (
    Gate,
    GateResult,
    GithubInventory,
    LanesFile,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
)
from agent.gates import evaluate_gates
from agent.github.errors import GitHubError
from agent.logs import get_logger
from agent.ports import SILENT, Clock, GitHubPort, Progress, Sleep
from helper.contract.dropin import rendered_hash

log = get_logger(__name__)

ObserveOne = Callable[[RunnerLaneMaintainerDesiredState], RunnerLaneMaintainerObservedState]

FIRST_POLL = 0.25
"""Seconds before the second read of GitHub while waiting for `online`: a runner that connects
is seen within about this long (the reads after the first are conditional: a 304 is free)."""
POLL_GROWTH = 1.25
"""Each wait is this much longer than the one before, up to `poll_interval`."""


def poll_waits(first: float, longest: float) -> Iterator[float]:
    """The waits between reads: `first`, growing by POLL_GROWTH, never above `longest`."""
    wait = min(first, longest)
    while True:
        yield wait
        wait = min(longest, wait * POLL_GROWTH)


@dataclass
class OnlineWait:
    """What waiting for `online` cost: reads of GitHub, how many were 304s, units spent."""

    reads: int = 0
    not_modified: int = 0
    rate_limit_used: int = 0

    def as_evidence(self) -> dict[str, int]:
        return {
            "reads": self.reads,
            "not_modified": self.not_modified,
            "changed": self.reads - self.not_modified,
            "rate_limit_used": self.rate_limit_used,
        }


@dataclass(frozen=True)
class Verdict:
    """What verification found: the record's status and the fields that prove it."""

    status: str
    observed_post: RunnerLaneMaintainerObservedState
    gates: tuple[GateResult, ...] = ()
    failed_gate: Gate | None = None
    error: str | None = None
    timings: tuple[tuple[str, float], ...] = ()

    def record_fields(self) -> dict[str, Any]:
        return {
            "observed_post": self.observed_post,
            "gates": self.gates,
            "failed_gate": self.failed_gate,
            "error": self.error,
        }


def both_samples(
    first: tuple[GateResult, ...], second: tuple[GateResult, ...]
) -> tuple[GateResult, ...]:
    """A gate passes only if it passed on both observations of the stability window."""
    return tuple(
        b
        if not b.passed or a.passed
        else a.model_copy(update={"detail": f"first sample: {a.detail}"})
        for a, b in zip(first, second, strict=True)
    )


def online(inventory: GithubInventory | None) -> bool:
    return bool(
        inventory and len(inventory.runners) == 1 and inventory.runners[0].status == "online"
    )


@dataclass(frozen=True)
class Verifier:
    """Checks a lane after its apply against a fresh observation, never the plan."""

    declared: LanesFile
    github: GitHubPort
    observe_one: ObserveOne
    clock: Clock
    sleep: Sleep
    online_timeout: float
    poll_interval: float  # the longest wait between two reads while waiting for online
    stability_window: float = 2 * 2.0  # two poll rounds (docs/runner-lane-baseline.md)
    first_poll: float = FIRST_POLL
    progress: Progress = SILENT
    journal_settle: tuple[float, ...] = (1.0, 2.0, 3.0)  # re-reads while the journal is silent

    def wait_online(
        self, desired: RunnerLaneMaintainerDesiredState, spent: OnlineWait | None = None
    ) -> GithubInventory | None:
        """Poll GitHub until the lane's one runner is online or the timeout (clock time) ends.
        The first read is fresh (no If-None-Match: after a change, never a body cached before
        it); each later read revalidates that answer, so a 304 is GitHub saying "still what
        you read a moment ago" at no rate-limit cost, and the waits can be short
        (`first_poll`, growing to `poll_interval`). `spent` counts the reads."""
        spent = spent if spent is not None else OnlineWait()
        started = self.clock()
        deadline = started + timedelta(seconds=self.online_timeout)
        waits = poll_waits(self.first_poll, self.poll_interval)
        inventory: GithubInventory | None = None
        fresh = True
        while True:
            waited = (self.clock() - started).total_seconds()
            self.progress.step(desired.lane_name, f"waiting for GitHub online ({waited:.0f} s)")
            stats = self.github.stats
            before = (stats.not_modified, stats.rate_limit_used)
            try:
                inventory = self.github.runners_named(desired.scope, desired.lane_name, fresh=fresh)
                fresh = False  # revalidate what was just read fresh
            except GitHubError as exc:
                log.warning("verify.github_unavailable", error=exc.code)
            spent.reads += 1
            spent.not_modified += stats.not_modified - before[0]
            spent.rate_limit_used += stats.rate_limit_used - before[1]
            if online(inventory) or self.clock() >= deadline:
                return inventory
            self.sleep(next(waits))

    def verify(
        self, desired: RunnerLaneMaintainerDesiredState, evidence: dict[str, Any]
    ) -> Verdict:
        """Every gate against the observation after the start; `completed` needs them all.
        Adds the runners and GitHub's request counts to `evidence`."""
        started = time.monotonic()
        spent = OnlineWait()
        self.wait_online(desired, spent)
        waited = time.monotonic() - started
        started = time.monotonic()
        self.progress.step(desired.lane_name, "observing the running lane and its baseline")
        first = self.observe_one(desired)
        observed_first = time.monotonic() - started
        self.progress.step(
            desired.lane_name, f"stability window ({self.stability_window:.0f} s), then again"
        )
        self.sleep(self.stability_window)  # the injected sleep: fake time in pure tests
        started = time.monotonic()
        post = self.settled(desired, self.observe_one(desired))
        timings = (
            ("wait_online", waited),
            ("observe_post_and_baseline", observed_first),
            ("stability_window", self.stability_window),
            ("observe_again", time.monotonic() - started),
        )
        runners = post.github.runners if post.github else ()
        evidence["runners"] = [r.model_dump(mode="json") for r in runners]
        evidence["github_requests"] = self.github.stats.as_evidence()
        evidence["online_wait"] = spent.as_evidence()
        evidence["stability_window_seconds"] = self.stability_window
        gates = both_samples(
            self._gates(desired, first, evidence), self._gates(desired, post, evidence, first)
        )
        failed = next((g for g in gates if not g.passed), None)
        return Verdict(
            status="failed" if failed else "completed",
            observed_post=post,
            gates=gates,
            failed_gate=failed.gate if failed else None,
            error=failed.detail if failed else None,
            timings=timings,
        )

    def holds(
        self, desired: RunnerLaneMaintainerDesiredState, now: RunnerLaneMaintainerObservedState
    ) -> GateResult | None:
        """Whether a stored proof still holds on a fresh observation: the first gate that
        fails now, or None. A stored `completed` is never answered without this."""
        # `now` as its own earlier sample: no window, but the listener's journal is checked
        now = self.settled(desired, now)
        gates = self._gates(desired, now, {"observed_by": "replay check"}, now)
        return next((g for g in gates if not g.passed), None)

    def settled(
        self, desired: RunnerLaneMaintainerDesiredState, observed: RunnerLaneMaintainerObservedState
    ) -> RunnerLaneMaintainerObservedState:
        """`observed`, or a bounded number of fresh observations while the active unit's journal
        is readable but says nothing yet (neither "Listening" nor a conflict): journald may
        write the listener's line after our read. Never a pass by itself: the gates still
        judge the last observation, and a journal that stays silent stays `session_unproven`."""
        for wait in self.journal_settle:
            log = observed.unit.listener_log
            silent = (
                observed.unit.active_state == "active"
                and log is not None
                and log.unreadable is None
                and not log.listening
                and not log.session_conflicts
            )
            if not silent:
                break
            self.sleep(wait)
            observed = self.observe_one(desired)
        return observed

    def _gates(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        post: RunnerLaneMaintainerObservedState,
        evidence: dict[str, Any],
        earlier: RunnerLaneMaintainerObservedState | None = None,
    ) -> tuple[GateResult, ...]:
        return evaluate_gates(
            self.declared,
            desired,
            post,
            expected_dropin_hash=rendered_hash(desired, self.declared.github.proxy),
            provider_evidence=evidence,
            now=self.clock(),
            earlier=earlier,
        )

    def verify_removed(self, desired: RunnerLaneMaintainerDesiredState) -> Verdict:
        """A remove completes no lane; it succeeds when nothing of the lane is left."""
        self.progress.step(desired.lane_name, "checking that nothing of the lane is left")
        post = self.observe_one(desired)
        left = []
        if post.github is None or post.github.runners:
            left.append("GitHub registration")
        if post.unit.exists:
            left.append("unit")
        if post.local.exists:
            left.append("runner directory")
        return Verdict(
            status="failed" if left else "removed",
            observed_post=post,
            error=("left behind: " + ", ".join(left)) if left else None,
        )
