"""Runner scopes as the REST API names them: `owner/name` (repository) or a login (organization)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from agent.github.errors import GitHubValidationFailed
from agent.github.settings import repo_path
from helper.contract.identifiers import canonical_organization

Call = Literal["list", "get", "delete", "registration", "remove", "downloads", "labels", "app"]

# GitHub's operationIds for each call, per scope (the official OpenAPI description).
OPERATIONS: dict[str, dict[Call, str]] = {
    "repository": {
        "list": "actions/list-self-hosted-runners-for-repo",
        "get": "actions/get-self-hosted-runner-for-repo",
        "delete": "actions/delete-self-hosted-runner-from-repo",
        "registration": "actions/create-registration-token-for-repo",
        "remove": "actions/create-remove-token-for-repo",
        "downloads": "actions/list-runner-applications-for-repo",
        "labels": "actions/set-custom-labels-for-self-hosted-runner-for-repo",
        "app": "apps/get-repo-installation",
    },
    "organization": {
        "list": "actions/list-self-hosted-runners-for-org",
        "get": "actions/get-self-hosted-runner-for-org",
        "delete": "actions/delete-self-hosted-runner-from-org",
        "registration": "actions/create-registration-token-for-org",
        "remove": "actions/create-remove-token-for-org",
        "downloads": "actions/list-runner-applications-for-org",
        "labels": "actions/set-custom-labels-for-self-hosted-runner-for-org",
        "app": "apps/get-org-installation",
    },
}
LIST_GROUPS = "actions/list-self-hosted-runner-groups-for-org"


def kind_of(scope: str) -> Literal["repository", "organization"]:
    """A login never contains '/', a repository always does."""
    return "repository" if "/" in scope else "organization"


def operation(scope: str, call: Call) -> str:
    return OPERATIONS[kind_of(scope)][call]


def org_path(organization: str) -> str:
    """`/orgs/<login>`, the login checked and quoted."""
    try:
        login = canonical_organization(organization)
    except ValueError as exc:
        raise GitHubValidationFailed(str(exc)) from None
    return f"/orgs/{quote(login, safe='')}"


def scope_path(scope: str) -> str:
    """`/repos/<owner>/<name>` or `/orgs/<login>`: where the scope's runner endpoints live."""
    return repo_path(scope) if kind_of(scope) == "repository" else org_path(scope)
