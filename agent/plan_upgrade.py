"""The upgrade decision, purely: the lane's runner version against its policy and GitHub's
newest release (docs/operations.md, "Runner versions and upgrades")."""

from __future__ import annotations

from datetime import datetime, timedelta

from agent.blockers import BlockerCode
from agent.contracts import (
    Action,
    Blocker,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    Shape,
    Step,
)
from agent.versions import version_key

# Drain first (nothing is touched while a job runs), then the new verified archive, stop,
# install it over the code tree (the registration files stay: the archive may not carry
# them), re-assert the unit, start, and verify every gate. A failure rolls back.
UPGRADE_STEPS = (
    Step.WAIT_IDLE,
    Step.DOWNLOAD_RUNNER,
    Step.STOP,
    Step.INSTALL_RUNNER,
    Step.INSTALL_OR_UPDATE_UNIT,
    Step.DAEMON_RELOAD,
    Step.ENABLE_NOW,
    Step.VERIFY,
)
UPGRADABLE = (Shape.SUPERVISED_ACTIVE, Shape.SUPERVISED_INACTIVE)
RUNNING = frozenset({"active", "activating", "reloading"})  # incl. Restart=always's waits

Decision = tuple[Action, tuple[Step, ...], list[Blocker]]


def upgrade_target(
    desired: RunnerLaneMaintainerDesiredState,
    observed: RunnerLaneMaintainerObservedState,
    now: datetime,
) -> str | None:
    """The version to upgrade to, or None: the policy's version when the installed one is
    older and GitHub offers it (for `latest`, once it has been offered `runner_max_age_days`)."""
    versions = observed.runner_versions
    if versions is None or versions.installed is None or versions.latest is None:
        return None
    installed, latest = version_key(versions.installed), version_key(versions.latest)
    if not installed or not latest or installed >= latest:
        return None
    policy = desired.runner_version_policy
    if policy == "latest":
        seen = versions.latest_seen_at or now
        if now - seen < timedelta(days=desired.runner_max_age_days):
            return None
        return versions.latest
    if version_key(policy) == latest:
        return policy  # pinned to the release GitHub offers, and not yet on it
    return None


def refused_pin(observed: RunnerLaneMaintainerObservedState, policy: str) -> Blocker | None:
    """A pinned version below GitHub's newest release while systemd keeps the unit running
    and GitHub still shows the runner offline: GitHub refuses runners below its minimum
    version, and the pin forbids the upgrade that would fix it. A blocker (no action, no
    retry loop) naming both versions. A stopped unit is not this: supervising starts it."""
    versions = observed.runner_versions
    if policy == "latest" or versions is None or versions.latest is None:
        return None
    runners = observed.github.runners if observed.github else ()
    offline = bool(runners) and all(r.status == "offline" for r in runners)
    running = observed.unit.active_state in RUNNING
    if not (offline and running) or version_key(policy) >= version_key(versions.latest):
        return None
    return Blocker(
        code=BlockerCode.RUNNER_VERSION_REFUSED,
        message=(
            f"runner_version_policy pins {policy}; GitHub offers {versions.latest} and shows "
            f"the runner offline (installed: {versions.installed or 'unknown'})"
        ),
    )


def with_upgrade(
    decided: Decision,
    shape: Shape,
    desired: RunnerLaneMaintainerDesiredState,
    observed: RunnerLaneMaintainerObservedState,
    now: datetime,
) -> Decision:
    """A supervised lane's reconcile, turned into an upgrade when its version policy says so,
    or blocked when a pinned version is refused."""
    action, _steps, blockers = decided
    if action is not Action.RECONCILE or shape not in UPGRADABLE or blockers:
        return decided
    refused = refused_pin(observed, desired.runner_version_policy)
    if refused is not None:
        return action, (), [refused]
    if upgrade_target(desired, observed, now) is not None:
        return Action.UPGRADE, UPGRADE_STEPS, []
    return decided
