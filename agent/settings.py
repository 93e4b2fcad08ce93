"""The agent's settings: one model, built by `load_settings` from lanes.toml's `[github]` and
`[evidence]` tables with the environment (systemd's directories, `LAUNCHPLANE_*`) over them;
the service, the CLI run by hand and the helper resolve GitHub the same way. A bad value
raises ConfigError."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent.audit_store import DEFAULT_AUDIT_DIR, DEFAULT_RETENTION_DAYS
from agent.github.settings import GitHubSettings
from agent.metrics import DEFAULT_METRICS_FILE
from helper.contract.errors import ConfigError
from helper.contract.lanes import DEFAULT_LANES_FILE, LanesFile
from helper.contract.protocol import DEFAULT_SOCKET
from helper.contract.site import GitHubSite, resolve_evidence

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
    environment: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    release_check_seconds: float = 3600.0  # how often the downloads API is asked (per repo)
    metrics_file: str | None = DEFAULT_METRICS_FILE  # None: no metrics (set to "")
    audit_retention_days: int = DEFAULT_RETENTION_DAYS

    @property
    def state_dir(self) -> Path:
        """/var/lib/launchplane-agent: the audit records, the evidence spool, the schedule."""
        return Path(self.audit_dir).parent

    def configured(self, declared: LanesFile) -> AgentSettings:
        """These settings with lanes.toml's `[github]` and `[evidence]` applied under the
        environment's overrides: what every command that reads lanes.toml runs with."""
        return _with_site(self, declared.github_site(), declared.evidence.url)


def _github(site: GitHubSite, env: Mapping[str, str], cache_dir: str) -> GitHubSettings:
    github = GitHubSettings.from_site(site, env)
    if github.cache_dir is None:
        github = github.model_copy(update={"cache_dir": Path(cache_dir) / "http"})
    return github


def _with_site(paths: AgentSettings, site: GitHubSite, evidence: str | None) -> AgentSettings:
    env = paths.environment
    try:
        evidence_url = resolve_evidence(evidence, env)
    except ValueError as exc:
        raise ConfigError(
            "environment", [("LAUNCHPLANE_EVIDENCE_URL", str(exc))], what="settings"
        ) from None
    return replace(paths, github=_github(site, env, paths.cache_dir), evidence_url=evidence_url)


def load_settings(
    env: Mapping[str, str] | None = None, declared: LanesFile | None = None
) -> AgentSettings:
    """The one way the agent reads its configuration: the environment, and (given) lanes.toml's
    `[github]`/`[evidence]` under it. The timer's service and a command run by hand call this
    with different environments and the same file, and get the same endpoints."""
    e = dict(os.environ if env is None else env)
    cache_dir = e.get("LAUNCHPLANE_CACHE_DIR", DEFAULT_CACHE_DIR)
    paths = AgentSettings(
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
        github=GitHubSettings(),
        environment={k: v for k, v in e.items() if k.startswith("LAUNCHPLANE_")},
        release_check_seconds=_seconds(e, "LAUNCHPLANE_RELEASE_CHECK_SECONDS", 3600.0),
        metrics_file=e.get("LAUNCHPLANE_METRICS_FILE", DEFAULT_METRICS_FILE) or None,
        audit_retention_days=_days(e.get("LAUNCHPLANE_AUDIT_RETENTION_DAYS")),
    )
    if declared is not None:
        return paths.configured(declared)
    return _with_site(paths, GitHubSite(), None)


def _seconds(e: Mapping[str, str], name: str, default: float) -> float:
    """A non-negative number of seconds from the environment; a bad value is ConfigError."""
    text = e.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise ConfigError(
            name, [("(value)", "must be a number of seconds from 0 to 86400")], what="setting"
        )
    return value


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
