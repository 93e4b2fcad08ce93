"""Orphans: lanes no longer in lanes.toml whose unit drop-in or runner directory this host's
helper made. Pure: rebuild such a lane from root-written marks so it can be listed and removed
(never created); the agent and the helper rebuild it with the same functions."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from helper.contract.dropin import LANE_MARK, read_dropin_marks, render_dropin
from helper.contract.identifiers import (
    MANAGED_LABEL,
    canonical_organization,
    canonical_repository,
    lane_name_findings,
    unit_name_for,
)
from helper.contract.lanes import (
    BASE_LABELS,
    HostPolicy,
    LanesFile,
    RunnerLaneMaintainerDesiredState,
    syntax_findings,
)

DESCRIPTION_RE = re.compile(r"^Description=launchplane runner lane (\S+) \((\S+)\)$", re.M)
USER_RE = re.compile(r"^User=(\S+)$", re.M)
ROOT_RE = re.compile(r"^TemporaryFileSystem=(\S+):ro$", re.M)
PROXY_RE = re.compile(r"^Environment=https_proxy=(\S+)$", re.M)


def orphan_lane(
    lane_name: str, scope: str, root: str, user: str, *, host_name: str, policy: HostPolicy
) -> RunnerLaneMaintainerDesiredState | None:
    """The lane as it must have been declared, scoped to a repository (`owner/name`) or an
    organization (a login); labels and a runner group are not recoverable and not needed to
    remove it. `apply = false`, so no pass ever creates it again. None when unsafe."""
    if lane_name_findings("lane_name", lane_name):
        return None
    labels = dict.fromkeys(
        [*policy.required_labels, *BASE_LABELS, MANAGED_LABEL, host_name, lane_name]
    )
    try:
        repository = canonical_repository(scope) if "/" in scope else None
        lane = RunnerLaneMaintainerDesiredState(
            repository=repository,
            organization=None if repository else canonical_organization(scope),
            host_name=host_name,
            lane_name=lane_name,
            systemd_unit_name=unit_name_for(lane_name),
            registration_root=root,
            service_user=user,
            labels=tuple(labels),
            product=lane_name,
            apply=False,
        )
    except ValueError:
        return None
    return None if syntax_findings(lane) else lane


def lane_from_dropin(
    text: str, host_name: str, policy: HostPolicy
) -> RunnerLaneMaintainerDesiredState | None:
    """The lane a drop-in was rendered for, only if its marks are intact and rendering that
    lane again gives exactly this text (so every path and user in it is the helper's own)."""
    marks = read_dropin_marks(text)
    description, user, root = (r.search(text) for r in (DESCRIPTION_RE, USER_RE, ROOT_RE))
    if not (marks.hash_valid and marks.lane and description and user and root):
        return None
    if description.group(1) != marks.lane or f"\n{LANE_MARK}{marks.lane}\n" not in text:
        return None
    lane = orphan_lane(
        marks.lane,
        description.group(2),
        root.group(1),
        user.group(1),
        host_name=host_name,
        policy=policy,
    )
    if lane is None:
        return None
    proxy = PROXY_RE.search(text)
    try:
        return lane if render_dropin(lane, proxy and proxy.group(1)) == text else None
    except ValueError:
        return None


def scope_from_runner_url(url: str, web_url: str) -> str | None:
    """The scope of a `.runner` gitHubUrl at this GitHub: `owner/repo` of
    `<web_url>/<owner>/<repo>`, the login of `<web_url>/<org>`."""
    parts, web = urlsplit(url.rstrip("/")), urlsplit(web_url)
    if (parts.scheme, parts.netloc.lower()) != (web.scheme, web.netloc.lower()):
        return None
    path = parts.path.strip("/")
    try:
        return canonical_repository(path) if "/" in path else canonical_organization(path)
    except ValueError:
        return None


def including(declared: LanesFile, lane: RunnerLaneMaintainerDesiredState) -> LanesFile:
    """lanes.toml as if it still declared the orphan (for removal only: apply = false)."""
    return LanesFile(
        policy=declared.policy,
        lanes=(*declared.lanes, lane),
        github=declared.github,
        evidence=declared.evidence,
    )
