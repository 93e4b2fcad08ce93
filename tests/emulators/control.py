"""The GitHub emulator's private control routes (`/_emulator/...`): faults, clock, state, log,
and runners a test needs that config.sh would never make (unmanaged, busy, pinned status).

    GET    /_emulator/health                        {"ok": true}
    GET    /_emulator/state                         world dump (secrets as digest prefixes)
    GET    /_emulator/requests[?operation=ID]       request log; DELETE clears it
    GET    /_emulator/validation                    OpenAPI violations seen so far
    GET    /_emulator/faults                        pending faults; POST adds one; DELETE clears
    POST   /_emulator/clock                         {"advance": seconds}
    POST   /_emulator/settings                      {"session_timeout", "offline_lag", "rate_limit",
                                                     "minimum_runner_version"}
    POST   /_emulator/releases                      {"version"}: publish a runner release (latest)
    POST   /_emulator/repos/{owner}/{repo}          declare a repository
    POST   /_emulator/repos/{owner}/{repo}/runners  {"name", "labels", "busy", "status", ...}
    POST   /_emulator/repos/{owner}/{repo}/registration-token   mint one without REST auth
    POST   /_emulator/orgs/{org}                    declare an organization (with `Default`)
    POST   /_emulator/orgs/{org}/runner-groups      {"name"}: add a runner group -> {"id", ...}
    PATCH  /_emulator/runners/{id}                  {"busy", "status" (null unpins), "version"}
    DELETE /_emulator/runners/{id}                  server-side deletion (even when busy)
    POST   /_emulator/runners/{id}/message          {"message": "restart" | "update"}
    POST   /_emulator/runners/{id}/jobs             {"script"}: queue a job -> {"id"}
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from tests.emulators.faults import Fault
from tests.emulators.github_app import EmuRequest, EmuResponse, GitHubApp, error, iso, json_response
from tests.emulators.github_state import StateError

REPO = re.compile(r"^/_emulator/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)(?P<rest>/.*)?$")
ORG = re.compile(r"^/_emulator/orgs/(?P<org>[^/]+)(?P<rest>/runner-groups)?$")
RUNNER = re.compile(r"^/_emulator/runners/(?P<id>[0-9]+)(?P<rest>/message|/jobs)?$")
SETTINGS = frozenset({"session_timeout", "offline_lag", "rate_limit", "minimum_runner_version"})


def handle(app: GitHubApp, request: EmuRequest) -> tuple[EmuResponse, str]:
    try:
        return _dispatch(app, request), "emulator-control"
    except (StateError, ValueError, TypeError, KeyError) as exc:
        status = exc.status if isinstance(exc, StateError) else 400
        return error(status, str(exc)), "emulator-control"


def _dispatch(app: GitHubApp, request: EmuRequest) -> EmuResponse:
    state, path, method = app.state, request.path, request.method
    body: Any = request.json() or {}
    if path == "/_emulator/health":
        return json_response(200, {"ok": True})
    if path == "/_emulator/state" and method == "GET":
        return json_response(200, state.dump())
    if path == "/_emulator/requests":
        if method == "DELETE":
            app.log.clear()
            return EmuResponse(204)
        return json_response(200, app.requests(request.arg("operation")))
    if path == "/_emulator/validation":
        return json_response(200, {"errors": list(app.validation_errors)})
    if path == "/_emulator/faults":
        if method == "POST":
            fault = app.faults.add(Fault(**body))
            return json_response(201, dataclasses.asdict(fault))
        if method == "DELETE":
            app.faults.clear()
            return EmuResponse(204)
        return json_response(200, app.faults.listing())
    if path == "/_emulator/clock" and method == "POST":
        state.clock.advance(float(body.get("advance", 0)))
        with state.mutate():
            pass
        return json_response(200, {"now": state.clock.time(), "iso": iso(state.clock.time())})
    if path == "/_emulator/settings" and method == "POST":
        unknown = set(body) - SETTINGS
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        for key, value in body.items():
            setattr(state.settings, key, type(getattr(state.settings, key))(value))
        return json_response(200, dataclasses.asdict(state.settings))
    if path == "/_emulator/releases" and method == "POST":
        return json_response(201, app.publish_release(str(body["version"])))
    if match := REPO.match(path):
        return _repository(app, request, match, body)
    if (match := ORG.match(path)) and method == "POST":
        if match["rest"] is None:
            state.add_organization(match["org"])
            return json_response(201, {"organization": match["org"]})
        known = state.organization(match["org"])
        if known is None:
            return error(404, "Not Found")
        group = state.add_runner_group(known, str(body["name"]))
        return json_response(201, dataclasses.asdict(group))
    if match := RUNNER.match(path):
        runner = state.runner(None, int(match["id"]))
        if runner is None:
            return error(404, "Not Found")
        if match["rest"] == "/message" and method == "POST":
            with state.mutate():
                runner.pending_message = str(body["message"])
            return EmuResponse(204)
        if match["rest"] == "/jobs" and method == "POST":
            job = state.queue_job(runner, str(body["script"]))
            return json_response(201, {"id": job.id, "status": job.status})
        if method == "PATCH":
            with state.mutate():
                if "busy" in body:
                    runner.busy = bool(body["busy"])
                if "status" in body:
                    runner.forced_status = body["status"]
                if "version" in body:
                    runner.version = body["version"]
            return json_response(200, state.api_runner(runner))
        if method == "DELETE":
            state.delete_runner(runner.id, force=True)
            return EmuResponse(204)
    return error(404, "Not Found")


def _repository(
    app: GitHubApp, request: EmuRequest, match: re.Match[str], body: Any
) -> EmuResponse:
    state = app.state
    repository = f"{match['owner']}/{match['repo']}"
    rest = match["rest"] or ""
    if rest == "" and request.method == "POST":
        state.add_repository(repository)
        return json_response(201, {"repository": repository})
    known = state.repository(match["owner"], match["repo"])
    if known is None:
        return error(404, "Not Found")
    if rest == "/runners" and request.method == "POST":
        runner = state.add_runner(
            known,
            str(body["name"]),
            labels=[str(x) for x in body.get("labels", [])],
            default_labels=bool(body.get("default_labels", True)),
            busy=bool(body.get("busy", False)),
            status=body.get("status"),
            ephemeral=bool(body.get("ephemeral", False)),
            version=body.get("version"),
        )
        return json_response(201, state.api_runner(runner))
    if rest == "/registration-token" and request.method == "POST":
        value, expires = state.mint("registration", known)
        return json_response(201, {"token": value, "expires_at": iso(expires)})
    return error(404, "Not Found")
