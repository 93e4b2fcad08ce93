"""The emulator's organization endpoints: the repository handlers at `/orgs/{org}/...` (a
runner's scope is the organization's login), and the organization's runner groups."""

from __future__ import annotations

from tests.emulators import github_app as g
from tests.emulators.github_app import (
    Context,
    EmuResponse,
    GitHubApp,
    error,
    json_response,
    route,
)

ORG = r"/orgs/(?P<org>[^/]+)"
RUNNER = ORG + r"/actions/runners/(?P<runner_id>[0-9]+)"
GROUPS = ORG + r"/actions/runner-groups"

# The repository handlers, served for an organization under its own operationIds.
for method, pattern, operation, handler in (
    ("GET", ORG + r"/actions/runners", "actions/list-self-hosted-runners-for-org", g.list_runners),
    ("GET", RUNNER, "actions/get-self-hosted-runner-for-org", g.get_runner),
    ("DELETE", RUNNER, "actions/delete-self-hosted-runner-from-org", g.delete_runner),
    (
        "POST",
        ORG + r"/actions/runners/registration-token",
        "actions/create-registration-token-for-org",
        g.registration_token,
    ),
    (
        "POST",
        ORG + r"/actions/runners/remove-token",
        "actions/create-remove-token-for-org",
        g.remove_token,
    ),
    (
        "GET",
        ORG + r"/actions/runners/downloads",
        "actions/list-runner-applications-for-org",
        g.downloads,
    ),
    (
        "GET",
        RUNNER + r"/labels",
        "actions/list-labels-for-self-hosted-runner-for-org",
        g.list_labels,
    ),
    (
        "PUT",
        RUNNER + r"/labels",
        "actions/set-custom-labels-for-self-hosted-runner-for-org",
        g.set_labels,
    ),
    (
        "POST",
        RUNNER + r"/labels",
        "actions/add-custom-labels-to-self-hosted-runner-for-org",
        g.add_labels,
    ),
    (
        "DELETE",
        RUNNER + r"/labels",
        "actions/remove-all-custom-labels-from-self-hosted-runner-for-org",
        g.remove_all_labels,
    ),
    (
        "DELETE",
        RUNNER + r"/labels/(?P<name>[^/]+)",
        "actions/remove-custom-label-from-self-hosted-runner-for-org",
        g.remove_label,
    ),
    ("GET", ORG + r"/installation", "apps/get-org-installation", g.get_installation),
):
    route(method, pattern, operation)(handler)


@route("GET", GROUPS, "actions/list-self-hosted-runner-groups-for-org")
def list_groups(app: GitHubApp, ctx: Context) -> EmuResponse:
    assert ctx.repository is not None
    per_page, page = g._page_args(ctx.request)
    groups = app.state.runner_groups_of(ctx.repository)
    chunk = groups[(page - 1) * per_page : page * per_page]
    base = ctx.request.base
    return json_response(
        200,
        {"total_count": len(groups), "runner_groups": [x.api(base) for x in chunk]},
    )


@route("GET", GROUPS + r"/(?P<group_id>[0-9]+)", "actions/get-self-hosted-runner-group-for-org")
def get_group(app: GitHubApp, ctx: Context) -> EmuResponse:
    assert ctx.repository is not None
    wanted = int(ctx.match["group_id"])
    for group in app.state.runner_groups_of(ctx.repository):
        if group.id == wanted:
            return json_response(200, group.api(ctx.request.base))
    return error(404, "Not Found")
