"""The lanes.toml contract: desired lanes and host allowlists, loaded strictly, checked purely."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    model_validator,
)

from helper.contract.errors import ConfigError
from helper.contract.identifiers import (
    HOST_RE,
    MANAGED_LABEL,
    SERVICE_USER_RE,
    Finding,
    canonical_organization,
    canonical_repository,
    label_findings,
    lane_name_findings,
    path_findings,
    runner_group_name,
    unit_name_for,
)
from helper.contract.lanes_checks import directory_overlaps, file_problems
from helper.contract.models import StrictModel
from helper.contract.scope import scope_problem
from helper.contract.site import EvidenceSite, GitHubSite, endpoint_problems

DEFAULT_LANES_FILE = "/etc/launchplane/lanes.toml"
BASE_LABELS = ("self-hosted", "launchplane", MANAGED_LABEL)
DEFAULT_GITHUB_WEB_URL = "https://github.com"


Repository = Annotated[str, AfterValidator(canonical_repository)]
Organization = Annotated[str, AfterValidator(canonical_organization)]
RunnerGroup = Annotated[str, AfterValidator(runner_group_name)]
VERSION_POLICY_RE = re.compile(r"latest|\d{1,6}\.\d{1,6}\.\d{1,6}")


def _version_policy(value: str) -> str:
    if not VERSION_POLICY_RE.fullmatch(value):
        raise ValueError('must be "latest" or a pinned runner version x.y.z, e.g. "2.330.0"')
    return value


VersionPolicy = Annotated[str, AfterValidator(_version_policy)]
# TOML arrays arrive as lists: accept them for tuples; the items stay strict.
Names = Annotated[tuple[str, ...], Field(strict=False)]
Repositories = Annotated[tuple[Repository, ...], Field(strict=False)]
Organizations = Annotated[tuple[Organization, ...], Field(strict=False)]
RunnerGroups = Annotated[tuple[RunnerGroup, ...], Field(strict=False)]


class RunnerLaneMaintainerDesiredState(StrictModel):
    """One lane as root declared it. Syntax is checked by `lane_findings`, not by the model,
    so that the planner can refuse (rather than crash on) anything unsafe that reaches it.

    A lane is scoped to exactly one of a repository (`owner/name`) or an organization (a
    login; optionally in a named `runner_group`): see `scope`."""

    repository: Repository | None = None
    host_name: str
    lane_name: str
    registration_root: str
    service_user: str
    systemd_unit_name: str
    labels: Names
    product: str
    runner_version_policy: VersionPolicy = "latest"
    managed: Literal[True] = True
    apply: bool = False
    build_work: bool = False
    organization: Organization | None = None
    runner_group: RunnerGroup | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> RunnerLaneMaintainerDesiredState:
        problem = scope_problem(self.repository, self.organization, self.runner_group)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def scope(self) -> str:
        """Where the runner is registered: `owner/name` for a repository lane, the login for an
        organization lane (a login never contains '/', so the two cannot be confused)."""
        return self.repository or self.organization or ""

    @property
    def scope_kind(self) -> Literal["repository", "organization"]:
        return "repository" if self.repository is not None else "organization"

    # Runner versions (docs/operations.md, "Runner versions and upgrades"): how many days the
    # lane may stay behind the newest release GitHub offers (GitHub stops sending jobs to a
    # runner not updated within 30 days of a release), and how long an upgrade, restart or
    # remove waits for a running job to end before it gives up.
    runner_max_age_days: int = Field(default=0, ge=0, le=28)
    runner_drain_wait_seconds: int = Field(default=600, ge=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _default_unit_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "systemd_unit_name" not in data and "lane_name" in data:
            return {**data, "systemd_unit_name": unit_name_for(str(data["lane_name"]))}
        return data

    @property
    def runner_directory(self) -> str:
        """Exactly `<registration_root>/<lane_name>`."""
        return f"{self.registration_root}/{self.lane_name}"


class LaneCounts(NamedTuple):
    names: Counter[str]
    directories: Counter[str]


class HostPolicy(StrictModel):
    """The allowlists a lane must pass on this host."""

    allowed_repositories: Repositories
    approved_hosts: Names
    allowed_registration_roots: Names
    allowed_service_users: Names
    required_labels: Names = BASE_LABELS
    min_buildx_version: str = Field(default="0.11.0", pattern=r"^\d+\.\d+\.\d+$")
    agent_user: str = "launchplane-agent"
    # Users the helper serves read-only: `status` and dry runs, never a change (docs/helper.md).
    operator_users: Names = ()
    # Where config.sh registers (`--url <github_web_url>/<repository>`): github.com, or a
    # GitHub Enterprise Server / a loopback emulator. Scheme and host[:port] only, no path.
    # Kept for files written before `[github] web_url`, which fills it in (docs/operations.md).
    github_web_url: str = Field(
        default=DEFAULT_GITHUB_WEB_URL,
        pattern=r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?$",
    )
    # Organization lanes: the organization must be listed here, and a declared runner group in
    # `allowed_runner_groups` (fail closed: both empty by default).
    allowed_organizations: Organizations = ()
    allowed_runner_groups: RunnerGroups = ()


class LanesFile(StrictModel):
    """The whole of /etc/launchplane/lanes.toml."""

    policy: HostPolicy
    lanes: Annotated[tuple[RunnerLaneMaintainerDesiredState, ...], Field(strict=False)] = ()
    github: GitHubSite = GitHubSite()
    evidence: EvidenceSite = EvidenceSite()

    @model_validator(mode="before")
    @classmethod
    def _web_url_once(cls, data: Any) -> Any:
        """`[github] web_url` is the one setting; the helper reads it as `policy.github_web_url`
        (a different value there is refused by `parse_lanes`)."""
        if not isinstance(data, dict):
            return data
        github, policy = data.get("github"), data.get("policy")
        web = github.get("web_url") if isinstance(github, dict) else None
        if isinstance(web, str) and isinstance(policy, dict) and "github_web_url" not in policy:
            return {**data, "policy": {**policy, "github_web_url": web.strip().rstrip("/")}}
        return data

    def github_site(self) -> GitHubSite:
        """`[github]` as every process resolves it: `web_url` from either place it may be set."""
        explicit = "github_web_url" in self.policy.model_fields_set
        web = self.github.web_url or (self.policy.github_web_url if explicit else None)
        return self.github.model_copy(update={"web_url": web})

    @cached_property
    def _by_name(self) -> dict[str, list[RunnerLaneMaintainerDesiredState]]:
        index: dict[str, list[RunnerLaneMaintainerDesiredState]] = {}
        for lane in self.lanes:
            index.setdefault(lane.lane_name, []).append(lane)
        return index

    @cached_property
    def counts(self) -> LaneCounts:
        """How often each lane name and runner directory is declared (computed once)."""
        return LaneCounts(
            Counter(lane.lane_name for lane in self.lanes),
            Counter(lane.runner_directory for lane in self.lanes),
        )

    def lanes_named(self, lane_name: str) -> list[RunnerLaneMaintainerDesiredState]:
        return list(self._by_name.get(lane_name, ()))

    def declares(self, lane: RunnerLaneMaintainerDesiredState) -> bool:
        """Whether exactly this lane (every field) is declared."""
        return lane in self._by_name.get(lane.lane_name, ())


def syntax_findings(lane: RunnerLaneMaintainerDesiredState) -> list[Finding]:
    """Findings that make a lane unsafe to even name: bad identifiers and path traversal."""
    out = lane_name_findings("lane_name", lane.lane_name)
    out += path_findings("registration_root", lane.registration_root)
    if not HOST_RE.fullmatch(lane.host_name):
        out.append(Finding("invalid_host_name", "host_name", "not an RFC 1123 host name"))
    if not SERVICE_USER_RE.fullmatch(lane.service_user) or lane.service_user == "root":
        out.append(Finding("invalid_service_user", "service_user", "not a valid non-root user"))
    out += label_findings("labels", list(lane.labels))
    out += label_findings("product", [lane.product])
    return out


def parse_lanes(text: str, path: str = "<string>") -> LanesFile:
    """Parse lanes.toml text; any problem raises ConfigError naming the file and field paths."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [("(file)", f"not valid TOML: {exc}")]) from None
    try:
        parsed = LanesFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(path, file_problems(exc)) from None
    problems = _site_problems(raw, parsed)
    problems += [
        (f"lanes[{i}].{f.field}", f"{f.code}: {f.message}")
        for i, lane in enumerate(parsed.lanes)
        for f in syntax_findings(lane)
    ]
    problems += [
        (f"policy.allowed_registration_roots[{i}]", f"{f.code}: {f.message}")
        for i, root in enumerate(parsed.policy.allowed_registration_roots)
        for f in path_findings("", root)
    ]
    problems += directory_overlaps(parsed.lanes) if not problems else []
    if problems:
        raise ConfigError(path, problems)
    return parsed


def _site_problems(raw: dict[str, Any], parsed: LanesFile) -> list[tuple[str, str]]:
    """`[github]` must name one GitHub: the legacy `policy.github_web_url` may repeat
    `github.web_url` but not contradict it, and the API must belong to the web URL."""
    legacy = raw.get("policy", {}).get("github_web_url")
    web = parsed.github.web_url
    out: list[tuple[str, str]] = []
    if isinstance(legacy, str) and web is not None and legacy.rstrip("/").lower() != web.lower():
        out.append(
            (
                "policy.github_web_url",
                f"{legacy!r} differs from github.web_url {web!r}; delete policy.github_web_url "
                "(github.web_url replaces it)",
            )
        )
    site = parsed.github_site()
    out += [(f"github.{k}", why) for k, why in endpoint_problems(site.api_url, site.web_url)]
    return out


def load_lanes(path: str | Path = DEFAULT_LANES_FILE) -> LanesFile:
    """Read and parse a lanes file; unreadable or invalid files raise ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            str(path), [("(file)", f"cannot read: {exc.__class__.__name__}")]
        ) from None
    return parse_lanes(text, str(path))
