"""Builders of desired and observed states for the pure planner tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.contracts import (
    BaselineFinding,
    BaselineState,
    GithubInventory,
    GithubLabel,
    GithubRunner,
    LocalRunnerDirectory,
    ProcessFacts,
    RunnerFile,
    RunnerLaneMaintainerObservedState,
    UnitState,
)
from agent.unit_states import ActiveState, ListenerLog, LoadState, UnitFileState
from helper.contract.dropin import expected_service, lane_dropin_path
from helper.contract.lanes import LanesFile, RunnerLaneMaintainerDesiredState, parse_lanes

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LANE = "cm-website-chris-testing"
REPO = "cbusillo/odoo-tenant-cm-website"
HOST = "chris-testing"
ROOT = "/srv/launchplane/runners"
USER = "launchplane-runner"
UID = 998
GID = 998
LABELS = ("self-hosted", "launchplane", "launchplane-managed", HOST, "cm-website")

POLICY_TOML = f"""
[policy]
allowed_repositories = ["{REPO}"]
approved_hosts = ["{HOST}"]
allowed_registration_roots = ["{ROOT}"]
allowed_service_users = ["{USER}"]
"""

LANE_TOML = f"""
[[lanes]]
lane_name = "{LANE}"
repository = "{REPO}"
host_name = "{HOST}"
registration_root = "{ROOT}"
service_user = "{USER}"
labels = {list(LABELS)!r}
product = "cm-website"
""".replace("'", '"')


def declared(extra_lanes: str = "", lane_toml: str = LANE_TOML) -> LanesFile:
    return parse_lanes(POLICY_TOML + lane_toml + extra_lanes)


def desired(**changes: Any) -> RunnerLaneMaintainerDesiredState:
    base = declared().lanes[0]
    return base.model_copy(update=changes) if changes else base


def runner(
    *,
    runner_id: int = 42,
    status: str = "online",
    busy: bool = False,
    labels: tuple[str, ...] = LABELS,
    name: str = LANE,
) -> GithubRunner:
    read_only = {"self-hosted", "linux", "x64"}
    return GithubRunner(
        id=runner_id,
        name=name,
        status=status,  # type: ignore[arg-type]
        busy=busy,
        labels=tuple(
            GithubLabel(name=label, type="read-only" if label.lower() in read_only else "custom")
            for label in (*labels, "Linux", "X64")
        ),
    )


def inventory(*runners: GithubRunner) -> GithubInventory:
    return GithubInventory(runners=runners, total_count=len(runners))


def local(
    *,
    exists: bool = True,
    registered: bool = True,
    agent_name: str = LANE,
    url: str = f"https://github.com/{REPO}",
    owner: int = UID,
    **more: Any,
) -> LocalRunnerDirectory:
    return LocalRunnerDirectory(
        path=f"{ROOT}/{LANE}",
        exists=exists,
        is_directory=exists,
        owner_uid=owner if exists else None,
        runner_file=RunnerFile(agent_name=agent_name, git_hub_url=url, agent_id=42)
        if registered and exists
        else None,
        has_run_script=exists,
        **more,
    )


def process(**changes: Any) -> ProcessFacts:
    """The lane's MainPID as /proc shows it when everything is right."""
    fields: dict[str, Any] = {
        "pid": 4242,
        "uids": (UID,) * 4,
        "gids": (GID,) * 4,
        "groups": (),
        "cmdline": ("/bin/bash", *expected_service(desired()).exec_start),
    }
    fields.update(changes)
    return ProcessFacts(**fields)


def effective(active: bool = True) -> dict[str, Any]:
    """What systemd reports for the lane's unit once its own drop-in (only) is loaded."""
    lane = desired()
    service = expected_service(lane)
    return {
        "dropin_path": lane_dropin_path(lane),
        "drop_in_paths": (lane_dropin_path(lane),),
        "user": service.user,
        "group": service.group,
        "working_directory": service.working_directory,
        "exec_start": (service.exec_start,),
        "main_process": process() if active else None,
        "listener_log": ListenerLog(listening=True) if active else None,
    }


def unit(
    *, present: bool = True, active: bool = True, marked: bool = True, **more: Any
) -> UnitState:
    if not present:
        return UnitState(
            unit_name=f"launchplane-runner@{LANE}.service",
            load_state=LoadState.NOT_FOUND,
            active_state=ActiveState.INACTIVE,
            sub_state="dead",
            unit_file_state=UnitFileState.NONE,
        )
    fields: dict[str, Any] = {
        "unit_name": f"launchplane-runner@{LANE}.service",
        "load_state": "loaded",
        "active_state": "active" if active else "inactive",
        "sub_state": "running" if active else "dead",
        "unit_file_state": "enabled",
        "main_pid": 4242 if active else 0,
        "main_pid_uid": UID if active else None,
        "main_pid_in_unit_cgroup": active,
        "dropin_present": True,
        "dropin_lane_mark": LANE if marked else None,
        "dropin_hash": "ab" * 32 if marked else None,
        "dropin_hash_valid": marked,
        **effective(active),
    }
    fields.update(more)
    return UnitState(**fields)


def baseline(*findings: BaselineFinding) -> BaselineState:
    return BaselineState(checked_at=NOW, findings=findings)


def observed(**changes: Any) -> RunnerLaneMaintainerObservedState:
    fields: dict[str, Any] = {
        "lane_name": LANE,
        "host_name": HOST,
        "observed_at": NOW,
        "service_user_uid": UID,
        "github": inventory(runner()),
        "local": local(),
        "unit": unit(),
        "baseline": baseline(),
    }
    fields.update(changes)
    return RunnerLaneMaintainerObservedState(**fields)


def absent(**changes: Any) -> RunnerLaneMaintainerObservedState:
    base: dict[str, Any] = {
        "github": inventory(),
        "local": local(exists=False),
        "unit": unit(present=False),
    }
    base.update(changes)
    return observed(**base)
