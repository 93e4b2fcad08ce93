"""The Actions service side that the runner emulator talks to (not part of the REST API).

Shaped after what actions/runner does against GitHub Enterprise Server: `config.sh` trades the
registration (or remove) token at `<web>/api/v3/actions/runner-registration` (`Authorization:
RemoteAuth <token>`) for a short-lived tenant credential and a service URL, then lists, adds,
replaces or deletes its agent there; `run.sh` trades the agent's client id for an access token,
opens a session, polls it (the heartbeat that keeps the runner online) and deletes it on exit.

    POST   /api/v3/actions/runner-registration         {url, runner_event} -> {url, token, ...}
    GET    /_emulator/actions/{owner}/{repo}/pools       the runner groups config.sh may choose
    GET    /_emulator/actions/{owner}/{repo}/agents?name=N
    POST   /_emulator/actions/{owner}/{repo}/agents      add (409 if the name exists)
    PUT    /_emulator/actions/{owner}/{repo}/agents/{id} replace (--replace)
    DELETE /_emulator/actions/{owner}/{repo}/agents/{id} (remove-event credential only)
    POST   /_emulator/actions/oauth2/token               {client_id} -> {access_token}
    POST   /_emulator/actions/{owner}/{repo}/sessions    -> {sessionId} (409 conflict,
                                                         403 below the minimum version)
    POST   /_emulator/actions/{owner}/{repo}/sessions/{sid}/messages   the heartbeat/poll:
                                                         {message, job: {id, script} | null}
    DELETE /_emulator/actions/{owner}/{repo}/sessions/{sid}            offline now
    POST   /_emulator/actions/{owner}/{repo}/jobs/{jid}  {result, exitCode, output}: job done

An organization's runners use the same routes with `-/{org}` in place of `{owner}/{repo}`
(`-` is no GitHub login). `--url <web>/<org>` registers an organization runner, into the pool
(runner group) config.sh chose: `poolId` in the agent's body.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from tests.emulators.github_app import (
    API_PREFIX,
    EmuRequest,
    EmuResponse,
    GitHubApp,
    json_response,
)
from tests.emulators.github_state import Runner, StateError

TENANT = r"^/_emulator/actions/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
AGENTS = re.compile(TENANT + r"/agents$")
AGENT = re.compile(TENANT + r"/agents/(?P<id>[0-9]+)$")
SESSIONS = re.compile(TENANT + r"/sessions$")
SESSION = re.compile(TENANT + r"/sessions/(?P<sid>[0-9a-f]+)$")
MESSAGES = re.compile(TENANT + r"/sessions/(?P<sid>[0-9a-f]+)/messages$")
JOB = re.compile(TENANT + r"/jobs/(?P<jid>[0-9a-f]+)$")
POOLS = re.compile(TENANT + r"/pools$")
ORG_TENANT = "-"  # `/_emulator/actions/-/{org}`: an organization's tenant
TENANT_LIFETIME = 3600.0
ACCESS_LIFETIME = 3600.0


def _fail(status: int, type_key: str, message: str) -> EmuResponse:
    return json_response(status, {"typeKey": type_key, "message": message})


def _bearer(request: EmuRequest) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def handle(app: GitHubApp, request: EmuRequest) -> tuple[EmuResponse, str]:
    try:
        return _dispatch(app, request)
    except StateError as exc:
        return _fail(exc.status, exc.type_key, exc.message), "actions-service"


def _agent(app: GitHubApp, runner: Runner, base: str) -> dict[str, Any]:
    return {
        "id": runner.id,
        "name": runner.name,
        "version": runner.version,
        "ephemeral": runner.ephemeral,
        "labels": [{"name": label.name, "type": label.type} for label in runner.labels],
        "authorization": {
            "clientId": runner.client_id,
            "authorizationUrl": f"{base}/_emulator/actions/oauth2/token",
        },
    }


def _dispatch(app: GitHubApp, request: EmuRequest) -> tuple[EmuResponse, str]:
    state = app.state
    path, method = request.path, request.method
    if path == f"{API_PREFIX}/actions/runner-registration" and method == "POST":
        return _registration(app, request), "actions/runner-registration"
    if path == "/_emulator/actions/oauth2/token" and method == "POST":
        body = request.json() or {}
        runner = state.runner_by_client(str(body.get("client_id", "")))
        if runner is None:
            return json_response(401, {"error": "invalid_client"}), "actions/oauth2-token"
        value, _ = state.mint(
            "oauth", runner.repository, lifetime=ACCESS_LIFETIME, runner_id=runner.id
        )
        return (
            json_response(
                200,
                {"access_token": value, "token_type": "bearer", "expires_in": int(ACCESS_LIFETIME)},
            ),
            "actions/oauth2-token",
        )

    found = next(
        (
            (match, name)
            for pattern, name in (
                (AGENTS, "agents"),
                (AGENT, "agent"),
                (SESSIONS, "sessions"),
                (SESSION, "session"),
                (MESSAGES, "messages"),
                (JOB, "job"),
                (POOLS, "pools"),
            )
            if (match := pattern.match(path))
        ),
        None,
    )
    if found is None:
        return _fail(404, "NotFound", "Not Found"), "actions-service"
    match, name = found
    organization = match["owner"] == ORG_TENANT
    repository = (
        state.organization(match["repo"])
        if organization
        else state.repository(match["owner"], match["repo"])
    )
    token = _bearer(request)
    if repository is None or token is None:
        return _fail(401, "Unauthorized", "Unauthorized"), f"actions/{name}"

    if name in ("agents", "agent", "pools"):
        tenant = state.token(token, ("tenant-register", "tenant-remove"))
        if tenant is None or (tenant.repository or "").lower() != repository.lower():
            return _fail(401, "Unauthorized", "Unauthorized"), f"actions/{name}"
        if name == "pools":
            return _pools(app, repository), "actions/pools"
        return _agents(app, request, match, repository, tenant.kind), f"actions/{name}"

    access = state.token(token, ("oauth",))
    runner = state.runner(repository, access.runner_id) if access and access.runner_id else None
    if access is None or runner is None:
        return (
            _fail(404, "TaskAgentNotFoundException", "The runner no longer exists on the server."),
            f"actions/{name}",
        )
    if name == "sessions" and method == "POST":
        body = request.json() or {}
        try:
            session = state.open_session(
                runner, str(body.get("sessionName", "RUNNER")), str(body.get("version", "unknown"))
            )
        except StateError as exc:  # a conflict or a refused version, logged as what it is
            return _fail(exc.status, exc.type_key, exc.message), "actions/session-create"
        return json_response(200, {"sessionId": session.id}), "actions/session-create"
    if name == "messages" and method == "POST":
        message = state.heartbeat(runner, match["sid"])
        job = state.assign_job(runner)
        offered = None if job is None else {"id": job.id, "script": job.script}
        return json_response(200, {"message": message, "job": offered}), "actions/session-poll"
    if name == "job" and method == "POST":
        body = request.json() or {}
        done = state.finish_job(
            runner,
            match["jid"],
            str(body.get("result", "")),
            body.get("exitCode"),
            str(body.get("output", "")),
        )
        return json_response(
            200, {"id": done.id, "status": done.status}
        ), f"actions/job-{done.status}"
    if name == "session" and method == "DELETE":
        state.close_session(runner, match["sid"])
        return EmuResponse(204), "actions/session-delete"
    return _fail(405, "MethodNotAllowed", "Method Not Allowed"), f"actions/{name}"


def _registration(app: GitHubApp, request: EmuRequest) -> EmuResponse:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    body = request.json() or {}
    event = body.get("runner_event")
    url = str(body.get("url", ""))
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if scheme != "RemoteAuth" or event not in ("register", "remove") or len(segments) not in (1, 2):
        return json_response(400, {"message": "Bad Request"})
    repository = app.state.scope(segments[0], segments[1] if len(segments) == 2 else None)
    issued = app.state.token(
        value.strip(), ("registration",) if event == "register" else ("remove",)
    )
    if (
        repository is None
        or issued is None
        or (issued.repository or "").lower() != repository.lower()
    ):
        return json_response(404, {"message": "Not Found"})  # what GitHub answers a bad token
    tenant, _ = app.state.mint(f"tenant-{event}", repository, lifetime=TENANT_LIFETIME)
    where = repository if "/" in repository else f"{ORG_TENANT}/{repository}"
    return json_response(
        200,
        {
            "url": f"{request.base}/_emulator/actions/{where}",
            "token_schema": "OAuthAccessToken",
            "token": tenant,
            "use_v2_flow": False,
        },
    )


def _pools(app: GitHubApp, scope: str) -> EmuResponse:
    """The agent pools (runner groups) of the scope, as the service lists them to config.sh."""
    groups = app.state.runner_groups_of(scope)
    value = [
        {"id": x.id, "name": x.name, "isHosted": False, "isInternal": x.default} for x in groups
    ]
    return json_response(200, {"count": len(value), "value": value})


def _pool_id(app: GitHubApp, scope: str, body: Any) -> int:
    """The pool the agent is added to: `poolId` of the body, one of the scope's groups."""
    wanted = body.get("poolId", 1) if isinstance(body, dict) else 1
    if not any(x.id == wanted for x in app.state.runner_groups_of(scope)):
        raise StateError(404, f"No agent pool found with identifier {wanted}.", "NotFound")
    return int(wanted)


def _agents(
    app: GitHubApp, request: EmuRequest, match: re.Match[str], repository: str, kind: str
) -> EmuResponse:
    state = app.state
    method = request.method
    if "id" not in match.groupdict() and method == "GET":
        name = request.arg("name") or ""
        found = [r for r in state.runners_of(repository) if r.name.lower() == name.lower()]
        return json_response(
            200, {"count": len(found), "value": [_agent(app, r, request.base) for r in found]}
        )
    if kind == "tenant-remove":
        if method == "DELETE" and "id" in match.groupdict():
            state.delete_runner(int(match["id"]), force=True)
            return EmuResponse(204)
        return _fail(403, "AccessDenied", "a remove credential cannot register")
    body = request.json() or {}
    labels = body.get("labels") or []
    custom = [str(x["name"]) for x in labels if isinstance(x, dict) and x.get("type") == "user"]
    system = any(isinstance(x, dict) and x.get("type") == "system" for x in labels)
    client_id = secrets.token_hex(16)
    state.check_version(str(body.get("version", "")))
    pool = _pool_id(app, repository, body)
    if method == "POST" and "id" not in match.groupdict():
        name = str(body.get("name", ""))
        if any(r.name.lower() == name.lower() for r in state.runners_of(repository)):
            return _fail(
                409, "TaskAgentExistsException", f"A runner exists with the same name {name}."
            )
        runner = state.add_runner(
            repository,
            name,
            labels=custom,
            default_labels=system,
            ephemeral=bool(body.get("ephemeral", False)),
            disable_update=bool(body.get("disableUpdate", False)),
            client_id=client_id,
            runner_group_id=pool,
        )
        return json_response(200, _agent(app, runner, request.base))
    if method == "PUT" and "id" in match.groupdict():
        existing = state.runner(repository, int(match["id"]))
        if existing is None:
            return _fail(404, "TaskAgentNotFoundException", "Not Found")
        with state.mutate() as world:
            existing.labels = state.build_labels(world, custom, system)
            existing.client_id = client_id  # the old registration's credential stops working
            existing.session = None
            existing.session_ended_at = state.clock.time()
            existing.ephemeral = bool(body.get("ephemeral", False))
            existing.disable_update = bool(body.get("disableUpdate", False))
            existing.busy = False
            existing.runner_group_id = pool
            for key in [k for k, t in world.tokens.items() if t.runner_id == existing.id]:
                del world.tokens[key]
        return json_response(200, _agent(app, existing, request.base))
    return _fail(405, "MethodNotAllowed", "Method Not Allowed")
