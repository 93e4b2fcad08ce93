"""Drain: wait, bounded, until GitHub shows a lane's runner idle (busy=false), polling with
conditional requests (a 304 costs no rate limit) and saying so once per change."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.ports import GitHubPort, Sleep

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Drained:
    """How the wait ended: idle (or gone), after how long and how many polls."""

    idle: bool
    waited_seconds: float
    polls: int

    def detail(self) -> dict[str, object]:
        return {
            "idle": self.idle,
            "waited_seconds": round(self.waited_seconds, 1),
            "polls": self.polls,
        }


def wait_until_idle(
    github: GitHubPort,
    repository: str,
    name: str,
    *,
    wait: float,
    sleep: Sleep,
    monotonic: Callable[[], float] = time.monotonic,
    poll_interval: float = 5.0,
    progress: Progress | None = None,
) -> Drained:
    """Poll GitHub's runner of that name until none is busy, at most `wait` seconds."""
    started = monotonic()
    polls, last = 0, ""
    while True:
        inventory = github.runners_named(repository, name)
        polls += 1
        busy = [r for r in inventory.runners if r.busy]
        waited = monotonic() - started
        state = f"runner {name} busy with a job (waited {waited:.0f} s of {wait:.0f} s)"
        if not busy:
            state = f"runner {name} is idle"
        if progress is not None and state.split(" (")[0] != last:
            progress(state)
            last = state.split(" (")[0]
        if not busy:
            return Drained(True, waited, polls)
        if waited >= wait:
            return Drained(False, waited, polls)
        sleep(min(poll_interval, max(0.0, wait - waited)))
