"""Observe: every outside read of a pass, through ports (GitHub, systemd's units, the host)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from structlog.contextvars import bound_contextvars

from agent.contracts import (
    BaselineState,
    GithubInventory,
    GithubProblem,
    GithubRunnerGroup,
    HostPolicy,
    LocalRunnerDirectory,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    RunnerVersions,
    UnitState,
)
from agent.github.errors import GitHubError
from agent.github.payloads import inventory_named
from agent.logs import get_logger
from agent.ports import Clock, DockerVersions, GitHubPort, HostPort, ReleasePort, UnitObserver
from helper.contract.errors import LaunchplaneError

log = get_logger(__name__)


def _problem(exc: GitHubError) -> GithubProblem:
    return GithubProblem(code=exc.code, message=str(exc), retry_at=exc.retry_at)


@dataclass(frozen=True)
class Observer:
    """Reads every lane of a pass at once: one GitHub listing per repository, one D-Bus
    connection for all units, Docker's versions once; the rest per lane."""

    policy: HostPolicy
    github: GitHubPort
    units: UnitObserver
    host: HostPort
    clock: Clock
    releases: ReleasePort | None = None  # None: versions are not observed

    def inventories(
        self, lanes: Sequence[RunnerLaneMaintainerDesiredState]
    ) -> tuple[dict[str, GithubInventory | None], dict[str, GithubProblem]]:
        """One listing per repository or organization (ETag: a steady pass costs no rate
        limit); `errors` is keyed by that scope."""
        out: dict[str, GithubInventory | None] = {}
        errors: dict[str, GithubProblem] = {}
        for scope in sorted({lane.scope for lane in lanes}):
            try:
                runners = self.github.list_runners(scope)
            except GitHubError as exc:
                errors[scope] = _problem(exc)
                runners = None
            for lane in lanes:
                if lane.scope == scope:
                    out[lane.lane_name] = (
                        None if runners is None else inventory_named(runners, lane.lane_name)
                    )
        return out, errors

    def observe(
        self, lanes: Sequence[RunnerLaneMaintainerDesiredState]
    ) -> tuple[dict[str, RunnerLaneMaintainerObservedState], dict[str, GithubProblem]]:
        """Every lane's observation, and the repositories whose listing failed (with why)."""
        inventories, errors = self.inventories(lanes)
        groups = self.runner_groups(lanes, errors)
        units = self.units.observe(lanes)
        versions = self.host.docker()  # once per pass, not per lane
        host = self.host.host_name()
        out = {}
        for lane in lanes:
            with bound_contextvars(lane=lane.lane_name):
                local = self.host.runner_directory(lane)
                inventory = None if lane.scope in errors else inventories.get(lane.lane_name)
                out[lane.lane_name] = RunnerLaneMaintainerObservedState(
                    lane_name=lane.lane_name,
                    host_name=host,
                    observed_at=(now := self.clock()),
                    service_user_uid=self.host.user_uid(lane.service_user),
                    github=inventory,
                    github_problem=errors.get(lane.scope),
                    runner_group=groups.get((lane.scope, lane.runner_group or "")),
                    local=local,
                    unit=units[lane.lane_name],
                    baseline=self._baseline(lane, now, versions),
                    runner_versions=self._versions(lane, inventory, local, units[lane.lane_name]),
                )
        return out, errors

    def runner_groups(
        self,
        lanes: Sequence[RunnerLaneMaintainerDesiredState],
        errors: dict[str, GithubProblem],
    ) -> dict[tuple[str, str], GithubRunnerGroup]:
        """Each declared runner group looked up once per organization; a failed lookup counts
        as a failed listing of the organization (its lanes are then not observed)."""
        out: dict[tuple[str, str], GithubRunnerGroup] = {}
        for scope, name in sorted({(la.scope, la.runner_group) for la in lanes if la.runner_group}):
            if scope in errors or name is None:
                continue
            try:
                out[scope, name] = GithubRunnerGroup(
                    name=name, id=self.github.runner_group_id(scope, name)
                )
            except GitHubError as exc:
                errors[scope] = _problem(exc)
        return out

    def observe_one(
        self, lane: RunnerLaneMaintainerDesiredState
    ) -> RunnerLaneMaintainerObservedState:
        observed, _ = self.observe([lane])
        return observed[lane.lane_name]

    def _versions(
        self,
        lane: RunnerLaneMaintainerDesiredState,
        inventory: GithubInventory | None,
        local: LocalRunnerDirectory,
        unit: UnitState,
    ) -> RunnerVersions | None:
        """The lane's runner versions; the release check is fresh when GitHub shows an
        installed lane's runner offline (a refused version is one reason it would be)."""
        if self.releases is None or inventory is None:
            return None
        runners = inventory.runners
        github_version = runners[0].version if len(runners) == 1 else None
        offline = bool(runners) and all(r.status == "offline" for r in runners)
        fresh = offline and unit.exists and local.archive_sha256 is not None
        try:
            return self.releases.versions(
                lane.scope, local.archive_sha256, github_version, fresh=fresh
            )
        except (OSError, LaunchplaneError) as exc:
            log.warning("releases.unavailable", error=type(exc).__name__)
            return None

    def _baseline(
        self, lane: RunnerLaneMaintainerDesiredState, now: datetime, versions: DockerVersions
    ) -> BaselineState | None:
        """The lane's baseline, or None (which blocks) when it could not be checked."""
        try:
            return self.host.baseline(lane, self.policy, now, versions)
        except (OSError, LaunchplaneError) as exc:
            log.warning("baseline.unavailable", error=type(exc).__name__)
            return None
