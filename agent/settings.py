"""The agent's settings: one model, built once per process by `load_settings` from the
environment (systemd's directories and `LAUNCHPLANE_*`); a bad value raises ConfigError."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.audit_store import DEFAULT_AUDIT_DIR, DEFAULT_RETENTION_DAYS
from agent.github.settings import GitHubSettings
from agent.metrics import DEFAULT_METRICS_FILE
from helper.contract.errors import ConfigError
from helper.contract.lanes import DEFAULT_LANES_FILE
from helper.contract.protocol import DEFAULT_SOCKET

DEFAULT_CACHE_DIR = "/var/cache/launchplane-agent"
DEFAULT_CREDENTIALS = "/etc/launchplane/credentials"
DEFAULT_RUNTIME_DIR = "/run/launchplane-agent"
DEFAULT_UNIT_DIR = "/etc/systemd/system"


@dataclass(frozen=True)
class AgentSettings:
    """Where this agent reads and writes, how it reaches GitHub, where evidence goes."""

    lanes_file: str
    audit_dir: str
    cache_dir: str
    runtime_dir: str
    helper_socket: str
    credentials: str
    unit_dir: str
    github: GitHubSettings
    evidence_url: str | None = None
    metrics_file: str | None = DEFAULT_METRICS_FILE  # None: no metrics (set to "")
    audit_retention_days: int = DEFAULT_RETENTION_DAYS

    @property
    def state_dir(self) -> Path:
        """/var/lib/launchplane-agent: the audit records, the evidence spool, the schedule."""
        return Path(self.audit_dir).parent


def load_settings(env: Mapping[str, str] | None = None) -> AgentSettings:
    """The one way the agent reads its configuration (besides lanes.toml, its desired state)."""
    e = os.environ if env is None else env
    cache_dir = e.get("LAUNCHPLANE_CACHE_DIR", DEFAULT_CACHE_DIR)
    github = GitHubSettings.from_environment(e)
    if github.cache_dir is None:
        github = github.model_copy(update={"cache_dir": Path(cache_dir) / "http"})
    return AgentSettings(
        lanes_file=e.get("LAUNCHPLANE_LANES_FILE", DEFAULT_LANES_FILE),
        audit_dir=e.get("LAUNCHPLANE_AUDIT_DIR", DEFAULT_AUDIT_DIR),
        cache_dir=cache_dir,
        runtime_dir=e.get(
            "RUNTIME_DIRECTORY", e.get("LAUNCHPLANE_RUNTIME_DIR", DEFAULT_RUNTIME_DIR)
        ),
        helper_socket=e.get("LAUNCHPLANE_HELPER_SOCKET", DEFAULT_SOCKET),
        credentials=e.get(
            "CREDENTIALS_DIRECTORY", e.get("LAUNCHPLANE_CREDENTIALS", DEFAULT_CREDENTIALS)
        ),
        unit_dir=e.get("LAUNCHPLANE_UNIT_DIR", DEFAULT_UNIT_DIR),
        github=github,
        evidence_url=e.get("LAUNCHPLANE_EVIDENCE_URL") or None,
        metrics_file=e.get("LAUNCHPLANE_METRICS_FILE", DEFAULT_METRICS_FILE) or None,
        audit_retention_days=_days(e.get("LAUNCHPLANE_AUDIT_RETENTION_DAYS")),
    )


def _days(value: str | None) -> int:
    """LAUNCHPLANE_AUDIT_RETENTION_DAYS: a whole number of days, at least 1."""
    if value is None:
        return DEFAULT_RETENTION_DAYS
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(
            "LAUNCHPLANE_AUDIT_RETENTION_DAYS",
            [("(environment)", f"{value!r} is not a whole number of days of at least 1")],
            what="setting",
        )
    return int(value)
