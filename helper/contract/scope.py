"""A lane's scope: exactly one of a repository or an organization (with an optional runner
group), and its findings against the host's allowlists."""

from __future__ import annotations

from typing import Protocol

from helper.contract.identifiers import Finding


class ScopeLane(Protocol):
    @property
    def repository(self) -> str | None: ...
    @property
    def organization(self) -> str | None: ...
    @property
    def runner_group(self) -> str | None: ...


class ScopeAllowlists(Protocol):
    @property
    def allowed_repositories(self) -> tuple[str, ...]: ...
    @property
    def allowed_organizations(self) -> tuple[str, ...]: ...
    @property
    def allowed_runner_groups(self) -> tuple[str, ...]: ...


def scope_problem(
    repository: str | None, organization: str | None, runner_group: str | None
) -> str | None:
    """Why these scope fields cannot declare a lane, or None."""
    if (repository is None) == (organization is None):
        return (
            "declare exactly one of repository = 'owner/name' (a repository runner) or "
            "organization = 'login' (an organization runner)"
        )
    if runner_group is not None and organization is None:
        return (
            "runner_group needs organization: runner groups exist only for organization "
            "runners (a repository runner is always in the Default group)"
        )
    return None


def _listed(value: str, allowed: tuple[str, ...]) -> bool:
    return value.lower() in {a.lower() for a in allowed}


def scope_findings(lane: ScopeLane, policy: ScopeAllowlists) -> list[Finding]:
    """The repository, or the organization and its runner group, against the allowlists:
    an organization lane needs its organization (and a named group) listed (fail closed)."""
    if lane.repository is not None:
        if _listed(lane.repository, policy.allowed_repositories):
            return []
        return [
            Finding("repository_not_allowed", "repository", f"{lane.repository} not allowlisted")
        ]
    out: list[Finding] = []
    organization = lane.organization or ""
    if not _listed(organization, policy.allowed_organizations):
        out.append(
            Finding(
                "organization_not_allowed",
                "organization",
                f"{organization} is not in policy.allowed_organizations",
            )
        )
    group = lane.runner_group
    if group is not None and not _listed(group, policy.allowed_runner_groups):
        out.append(
            Finding(
                "runner_group_not_allowed",
                "runner_group",
                f"{group} is not in policy.allowed_runner_groups",
            )
        )
    return out
