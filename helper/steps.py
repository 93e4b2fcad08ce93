"""The runner-user steps as transient-unit specs: fixed argv, derived from the lane only."""

from __future__ import annotations

import secrets

from helper.config import HelperConfig
from helper.facts import expected_runner_url
from helper.lanes import HostPolicy, RunnerLaneMaintainerDesiredState
from helper.systemd import TransientSpec

STEP_PATH = "/usr/local/bin:/usr/bin:/bin"


def step_unit_name(step: str, lane_name: str) -> str:
    """`launchplane-step-<step>-<lane>-<random>.service`: unique, and greppable in the journal."""
    return f"launchplane-step-{step}-{lane_name}-{secrets.token_hex(4)}.service"


def _argv(config: HelperConfig, *args: str) -> tuple[str, ...]:
    return (config.python, "-I", "-S", config.steps_program, *args)


def extract_spec(
    lane: RunnerLaneMaintainerDesiredState, archive_sha256: str, config: HelperConfig
) -> TransientSpec:
    """Unpack the cached runner tarball (passed on stdin) into <root>/<lane>; no network."""
    return TransientSpec(
        name=step_unit_name("extract", lane.lane_name),
        description=f"launchplane: install runner for lane {lane.lane_name}",
        argv=_argv(config, "extract", lane.registration_root, lane.lane_name, archive_sha256),
        user=lane.service_user,
        working_directory=lane.registration_root,
        read_write_paths=(lane.registration_root,),
        environment=(f"PATH={STEP_PATH}", "LANG=C.UTF-8", f"HOME={lane.registration_root}"),
        private_network=True,
        timeout=config.step_timeout,
    )


def register_spec(
    lane: RunnerLaneMaintainerDesiredState, policy: HostPolicy, config: HelperConfig
) -> TransientSpec:
    """config.sh with the fixed flags; the token arrives on stdin."""
    return TransientSpec(
        name=step_unit_name("register", lane.lane_name),
        description=f"launchplane: register runner for lane {lane.lane_name}",
        argv=_argv(
            config,
            "register",
            lane.runner_directory,
            expected_runner_url(lane, policy),
            lane.lane_name,
            ",".join(lane.labels),
        ),
        user=lane.service_user,
        working_directory=lane.runner_directory,
        read_write_paths=(lane.runner_directory,),
        environment=(f"PATH={STEP_PATH}", "LANG=C.UTF-8", f"HOME={lane.runner_directory}"),
        timeout=config.step_timeout,
    )


def unregister_spec(lane: RunnerLaneMaintainerDesiredState, config: HelperConfig) -> TransientSpec:
    """config.sh remove; the token arrives on stdin."""
    return TransientSpec(
        name=step_unit_name("unregister", lane.lane_name),
        description=f"launchplane: unregister runner for lane {lane.lane_name}",
        argv=_argv(config, "unregister", lane.runner_directory),
        user=lane.service_user,
        working_directory=lane.runner_directory,
        read_write_paths=(lane.runner_directory,),
        environment=(f"PATH={STEP_PATH}", "LANG=C.UTF-8", f"HOME={lane.runner_directory}"),
        timeout=config.step_timeout,
    )
