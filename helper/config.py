"""The helper's own configuration: paths, bus address and timeouts, from its unit's environment."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from helper.contract.errors import ConfigError
from helper.contract.lanes import DEFAULT_LANES_FILE

DEFAULT_UNIT_DIR = "/etc/systemd/system"
DEFAULT_AUDIT_LOG = "/var/log/launchplane/helper.jsonl"
DEFAULT_RUNNER_CACHE = "/var/cache/launchplane-agent/runners"
STEPS_PROGRAM = str(Path(__file__).with_name("runner_steps.py"))


def _seconds(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            "environment", [(key, f"{raw!r} is not a number of seconds")], what="settings"
        ) from None
    if not 0 < value < 86400:
        raise ConfigError(
            "environment", [(key, f"{raw!r} must be between 0 and 86400 seconds")], what="settings"
        )
    return value


@dataclass(frozen=True)
class HelperConfig:
    """Where the helper reads and writes. The defaults are the installed paths."""

    lanes_file: str = DEFAULT_LANES_FILE
    unit_dir: str = DEFAULT_UNIT_DIR
    audit_log: str = DEFAULT_AUDIT_LOG
    runner_cache_dir: str = DEFAULT_RUNNER_CACHE
    bus_address: str | None = None
    idle_timeout: float = 30.0
    frame_timeout: float = 5.0
    job_timeout: float = 360.0
    step_timeout: float = 600.0
    python: str = field(default_factory=lambda: sys.executable)
    steps_program: str = STEPS_PROGRAM

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HelperConfig:
        """Read `LAUNCHPLANE_*` variables (set by the helper's unit); unset ones keep defaults.
        A value that is no number of seconds raises ConfigError."""
        env = os.environ if env is None else env
        return cls(
            lanes_file=env.get("LAUNCHPLANE_LANES_FILE", DEFAULT_LANES_FILE),
            unit_dir=env.get("LAUNCHPLANE_UNIT_DIR", DEFAULT_UNIT_DIR),
            audit_log=env.get("LAUNCHPLANE_HELPER_AUDIT_LOG", DEFAULT_AUDIT_LOG),
            runner_cache_dir=env.get("LAUNCHPLANE_RUNNER_CACHE", DEFAULT_RUNNER_CACHE),
            bus_address=env.get("LAUNCHPLANE_BUS_ADDRESS") or None,
            idle_timeout=_seconds(env, "LAUNCHPLANE_HELPER_IDLE_SECONDS", 30.0),
            frame_timeout=_seconds(env, "LAUNCHPLANE_HELPER_FRAME_SECONDS", 5.0),
            job_timeout=_seconds(env, "LAUNCHPLANE_HELPER_JOB_SECONDS", 360.0),
            step_timeout=_seconds(env, "LAUNCHPLANE_HELPER_STEP_SECONDS", 600.0),
        )
