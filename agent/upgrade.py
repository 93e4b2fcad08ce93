"""An upgrade that failed after the lane was stopped: put the previous runner back (the old
verified archive, still in the agent's cache) and say so in the record's error."""

from __future__ import annotations

import time
from typing import Any

from agent.apply import Applier, Applying, StepLog
from agent.contracts import (
    Action,
    RunnerLaneMaintainerObservedState,
    RunnerLaneMaintainerPlan,
    Step,
)
from agent.logs import get_logger
from helper.contract.errors import LaunchplaneError

log = get_logger(__name__)


def roll_back(
    applier: Applier, result: RunnerLaneMaintainerPlan, run: Applying, steps: StepLog
) -> str:
    """For an upgrade whose `stop` ran: stop, install-runner with the previous archive,
    enable-now. Returns the sentence the failed record's error ends with ("" when there was
    nothing to roll back). The next pass verifies the restored lane like any other."""
    if result.action is not Action.UPGRADE:
        return ""
    if not any(e["step"] == Step.STOP.value for e in steps.entries):
        return ""  # nothing was touched (the drain wait or the download failed)
    previous = run.pre.local.archive_sha256
    versions = run.pre.runner_versions
    old = versions.installed if versions is not None else None
    run.evidence.setdefault("runner_upgrade", {})["rolled_back"] = False
    if previous is None:
        return "; no previous archive is recorded: not rolled back"
    lane = run.desired.lane_name
    started = time.monotonic()
    try:
        applier.helper.call("stop", lane)
        applier.helper.call("install-runner", lane, archive_sha256=previous)
        applier.helper.call("enable-now", lane)
    except (LaunchplaneError, OSError) as exc:
        steps.add("roll_back", time.monotonic() - started, ok=False, error=str(exc))
        log.warning("upgrade.rollback_failed", error=type(exc).__name__)
        return f"; rolling back to {old or previous[:12]} failed too: {exc}"
    steps.add("roll_back", time.monotonic() - started, ok=True, archive_sha256=previous)
    run.evidence["runner_upgrade"]["rolled_back"] = True
    log.info("upgrade.rolled_back", version=old)
    return f"; rolled back to the previous runner {old or previous[:12]}"


def upgrade_evidence(pre: RunnerLaneMaintainerObservedState) -> dict[str, Any]:
    """What the record says about an upgrade: from which version (and archive) to which."""
    versions = pre.runner_versions
    return {
        "from": versions.installed if versions else None,
        "from_archive_sha256": pre.local.archive_sha256,
        "to": versions.latest if versions else None,
    }
