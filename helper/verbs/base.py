"""What every verb gets (its context) and gives back (actions and a structured result)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue

from helper.access import Access
from helper.config import HelperConfig
from helper.contract.identifiers import unit_name_for
from helper.contract.lanes import HostPolicy, RunnerLaneMaintainerDesiredState
from helper.contract.protocol import Request
from helper.contract.systemd import SystemdPort
from helper.facts import LaneFacts, UserDb, gather

Result = dict[str, JsonValue]


@dataclass(frozen=True)
class VerbContext:
    """One validated request for one resolved lane, with the ports a verb may use."""

    request: Request
    lane: RunnerLaneMaintainerDesiredState
    policy: HostPolicy
    config: HelperConfig
    systemd: SystemdPort
    users: UserDb
    lanes: tuple[RunnerLaneMaintainerDesiredState, ...] = ()
    """Every lane lanes.toml declares (the verb's own included)."""
    proxy: str | None = None
    """lanes.toml's `[github] proxy`: the runner's way to GitHub (drop-in, registration)."""

    @property
    def unit(self) -> str:
        return unit_name_for(self.lane.lane_name)

    @property
    def dry_run(self) -> bool:
        return self.request.dry_run

    async def facts(self) -> LaneFacts:
        return await gather(
            self.lane, self.policy, self.config.unit_dir, self.users, self.systemd, proxy=self.proxy
        )


@dataclass(frozen=True)
class VerbSpec:
    """A verb: its wire name, who may call it, what it does, and its implementation."""

    name: str
    access: Access
    summary: str
    run: Callable[[VerbContext], Awaitable[Result]]


@dataclass
class Outcome:
    """The ordered actions of one verb: `planned` (dry-run), `done` or `skipped`."""

    ctx: VerbContext
    actions: list[dict[str, Any]] = field(default_factory=list)
    changed: bool = False
    would_change: bool = False

    def step(self, action: str, **detail: Any) -> bool:
        """Record an action that changes something; True when the caller should perform it."""
        self.would_change = True
        if self.ctx.dry_run:
            self.actions.append({"action": action, "status": "planned", **detail})
            return False
        self.actions.append({"action": action, "status": "done", **detail})
        self.changed = True
        return True

    def skip(self, action: str, reason: str, **detail: Any) -> None:
        self.actions.append({"action": action, "status": "skipped", "reason": reason, **detail})

    def result(self, **extra: Any) -> Result:
        out: dict[str, Any] = {
            "unit": self.ctx.unit,
            "runner_directory": self.ctx.lane.runner_directory,
            "service_user": self.ctx.lane.service_user,
            "changed": self.changed,
            "would_change": self.would_change,
            "actions": self.actions,
        }
        out.update(extra)
        return out
