"""The runner-user steps as transient-unit specs: fixed argv, derived from the lane only."""

from __future__ import annotations

import secrets

from helper.config import HelperConfig
from helper.contract.dropin import proxy_environment
from helper.contract.lanes import HostPolicy, RunnerLaneMaintainerDesiredState
from helper.contract.transient import TransientSpec
from helper.facts import expected_runner_url

STEP_PATH = "/usr/local/bin:/usr/bin:/bin"


def step_unit_name(step: str, lane_name: str) -> str:
    """`launchplane-step-<step>-<lane>-<random>.service`: unique, and greppable in the journal."""
    return f"launchplane-step-{step}-{lane_name}-{secrets.token_hex(4)}.service"


def _argv(config: HelperConfig, *args: str) -> tuple[str, ...]:
    return (config.python, "-I", "-S", config.steps_program, *args)


def runner_user_spec(
    step: str,
    lane: RunnerLaneMaintainerDesiredState,
    config: HelperConfig,
    *,
    description: str,
    argv: tuple[str, ...],
    directory: str,
    private_network: bool = False,
    environment: tuple[str, ...] = (),
) -> TransientSpec:
    """A runner-user step: runs as the lane's service user in `directory`, which is its HOME
    and its only writable path."""
    return TransientSpec(
        name=step_unit_name(step, lane.lane_name),
        description=f"launchplane: {description} for lane {lane.lane_name}",
        argv=argv,
        user=lane.service_user,
        working_directory=directory,
        read_write_paths=(directory,),
        environment=(f"PATH={STEP_PATH}", "LANG=C.UTF-8", f"HOME={directory}", *environment),
        private_network=private_network,
        timeout=config.step_timeout,
    )


def extract_spec(
    lane: RunnerLaneMaintainerDesiredState, archive_sha256: str, config: HelperConfig
) -> TransientSpec:
    """Unpack the cached runner tarball (passed on stdin) into <root>/<lane>; no network."""
    return runner_user_spec(
        "extract",
        lane,
        config,
        description="install runner",
        argv=_argv(config, "extract", lane.registration_root, lane.lane_name, archive_sha256),
        directory=lane.registration_root,
        private_network=True,
    )


def register_spec(
    lane: RunnerLaneMaintainerDesiredState,
    policy: HostPolicy,
    config: HelperConfig,
    archive_sha256: str,
    *,
    proxy: str | None = None,
) -> TransientSpec:
    """A pristine config.sh (from the cached archive) with the fixed flags; the token arrives
    on stdin; `proxy` (lanes.toml `[github] proxy`) is its way to GitHub."""
    argv = _argv(
        config,
        "register",
        lane.runner_directory,
        expected_runner_url(lane, policy),
        lane.lane_name,
        ",".join(lane.labels),
        f"{config.runner_cache_dir}/{archive_sha256}.tar.gz",
        archive_sha256,
        *((lane.runner_group,) if lane.runner_group is not None else ()),
    )
    return runner_user_spec(
        "register",
        lane,
        config,
        description="register runner",
        argv=argv,
        directory=lane.runner_directory,
        environment=proxy_environment(proxy),
    )


def unregister_spec(lane: RunnerLaneMaintainerDesiredState, config: HelperConfig) -> TransientSpec:
    """Delete the local registration files; no token, no network, no runner code."""
    return runner_user_spec(
        "unregister",
        lane,
        config,
        description="forget the local registration",
        argv=_argv(config, "unregister", lane.runner_directory),
        directory=lane.runner_directory,
        private_network=True,
    )
