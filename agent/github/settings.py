"""Where GitHub is and how the adapter talks to it: base URLs, API version, limits, waits."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.github.errors import GitHubValidationFailed
from helper.contract.errors import ConfigError
from helper.contract.identifiers import canonical_repository
from helper.contract.models import validation_problems
from helper.contract.site import (
    ENV_API_URL,
    ENV_WEB_URL,
    GITHUB_COM_API,
    GITHUB_COM_WEB,
    BaseUrl,
    GitHubSite,
    ProxyUrl,
    base_url,
    is_loopback_host,
    resolve_github,
)

__all__ = ["ENV_API_URL", "ENV_WEB_URL", "GitHubSettings", "base_url", "is_loopback_host"]

API_VERSION: Final = "2022-11-28"
DEFAULT_API_URL = GITHUB_COM_API
DEFAULT_WEB_URL = GITHUB_COM_WEB
USER_AGENT = "launchplane-runner-maintainer/0.1.0"

ENV_CACHE_DIR = "LAUNCHPLANE_GITHUB_CACHE_DIR"
ENV_CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"  # set by systemd's LoadCredential=


def repo_path(repository: str) -> str:
    """The API path of a repository, `/repos/<owner>/<name>`, each part checked and quoted."""
    try:
        owner, name = canonical_repository(repository).split("/")
    except ValueError as exc:
        raise GitHubValidationFailed(str(exc)) from None
    return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


class GitHubSettings(BaseModel):
    """How to reach GitHub. The same two URLs point at github.com, a GitHub Enterprise Server
    (`https://ghes.example/api/v3` + `https://ghes.example`) or the emulator
    (`http://127.0.0.1:PORT/api/v3` + `http://127.0.0.1:PORT`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: BaseUrl = DEFAULT_API_URL
    web_url: BaseUrl = DEFAULT_WEB_URL  # what `config.sh --url` gets: <web_url>/<owner>/<repo>
    proxy: ProxyUrl | None = None  # every request goes through it (lanes.toml [github] proxy)
    api_version: Literal["2022-11-28"] = API_VERSION
    user_agent: str = USER_AGENT
    cache_dir: Path | None = None  # ETag cache on disk; memory only when None
    per_page: int = Field(default=100, ge=1, le=100)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_initial: float = Field(default=1.0, ge=0)
    backoff_max: float = Field(default=60.0, ge=0)
    secondary_min_wait: float = Field(default=60.0, ge=0)  # GitHub: "at least one minute"
    # Waits between attempts, bounded three ways so that a pass always ends well inside the
    # agent unit's TimeoutStartSec=15min: one wait, all waits of one call, all of one client
    # (one pass, or one CLI command). A longer wait raises GitHubRateLimited with `retry_at`.
    max_rate_limit_wait: float = Field(default=300.0, ge=0)
    max_wait_per_call: float = Field(default=300.0, ge=0)
    max_wait_per_pass: float = Field(default=600.0, ge=0)
    max_download_bytes: int = Field(default=512 * 1024 * 1024, gt=0)

    @classmethod
    def from_site(
        cls, site: GitHubSite, environ: Mapping[str, str] | None = None
    ) -> GitHubSettings:
        """lanes.toml's `[github]` with LAUNCHPLANE_GITHUB_API_URL / _WEB_URL / _PROXY /
        _CACHE_DIR over it (helper.contract.site.resolve_github); a problem is a ConfigError."""
        env = os.environ if environ is None else environ
        endpoints, problems = resolve_github(site, env)
        if problems:
            raise ConfigError(
                "environment",
                problems,
                what="settings",
            )
        values: dict[str, object] = {
            "api_url": endpoints.api_url,
            "web_url": endpoints.web_url,
            "proxy": endpoints.proxy,
        }
        if env.get(ENV_CACHE_DIR):
            values["cache_dir"] = Path(env[ENV_CACHE_DIR])
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(
                "environment", validation_problems(exc, "(environment)"), what="settings"
            ) from None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> GitHubSettings:
        """Settings from the environment alone (no lanes.toml), else github.com."""
        return cls.from_site(GitHubSite(), environ)
