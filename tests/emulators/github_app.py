"""The GitHub emulator's request handling, independent of any transport: REST operations with
GitHub's semantics, authentication, rate limits, ETags, faults, OpenAPI validation, request log.

`GitHubApp.handle` serves the HTTP server in `github_api.py` and, unchanged, an
`httpx.MockTransport` (see `mock_transport`)."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from tests.emulators.faults import Fault, FaultPlan
from tests.emulators.github_state import App, Runner, State, StateError, digest
from tests.emulators.openapi import SpecValidator, SpecViolation

API_PREFIX = "/api/v3"
API_VERSION = "2022-11-28"
DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
DOWNLOAD_RE = re.compile(r"^/actions/runner/releases/download/v([0-9.]+)/([A-Za-z0-9._-]+)$")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class EmuRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base: str  # scheme://host:port as the client addressed us

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def arg(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)


@dataclass
class EmuResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    disconnect: bool = False
    delay: float = 0.0


def json_response(status: int, document: Any, headers: dict[str, str] | None = None) -> EmuResponse:
    body = b"" if document is None else json.dumps(document, separators=(",", ":")).encode()
    out = {"content-type": "application/json; charset=utf-8"} if document is not None else {}
    return EmuResponse(status, {**out, **(headers or {})}, body)


def error(status: int, message: str, documentation_url: str = DOCS) -> EmuResponse:
    return json_response(
        status, {"message": message, "documentation_url": documentation_url, "status": str(status)}
    )


@dataclass
class Identity:
    kind: str  # pat | installation | app
    key: str  # rate-limit bucket; a digest, never a secret
    repositories: list[str] | None
    permission: str = "admin"
    app: App | None = None

    def sees(self, repository: str) -> bool:
        return self.repositories is None or repository.lower() in (
            r.lower() for r in self.repositories
        )


@dataclass
class Context:
    request: EmuRequest
    match: re.Match[str]
    identity: Identity
    repository: str | None

    def runner(self, state: State) -> Runner:
        found = state.runner(self.repository, int(self.match["runner_id"]))
        if found is None:
            raise StateError(404, "Not Found")
        return found


Handler = Callable[["GitHubApp", Context], EmuResponse]
ROUTES: list[tuple[str, re.Pattern[str], str, Handler]] = []


def route(method: str, pattern: str, operation: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((method, re.compile(f"^{pattern}$"), operation, handler))
        return handler

    return register


REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
RUNNER = REPO + r"/actions/runners/(?P<runner_id>[0-9]+)"


class GitHubApp:
    """One emulated GitHub. Thread-safe: the HTTP server calls `handle` from many threads."""

    def __init__(
        self,
        state: State,
        *,
        validator: SpecValidator | None = None,
        runner_tarball: Path | None = None,
        runner_version: str = "2.329.0",
    ) -> None:
        self.state = state
        self.validator = validator
        self.faults = FaultPlan()
        self.runner_version = runner_version  # the latest release: what downloads offers
        self.runner_tarball = runner_tarball
        self._tarball_sha256 = (
            hashlib.sha256(runner_tarball.read_bytes()).hexdigest() if runner_tarball else None
        )
        # every release ever published stays downloadable at its URL, as on github.com
        self._releases: dict[str, tuple[Path, str]] = {}
        if runner_tarball is not None and self._tarball_sha256 is not None:
            self._releases[runner_version] = (runner_tarball, self._tarball_sha256)
        self.validation_errors: list[str] = []
        self.log: deque[dict[str, Any]] = deque(maxlen=20_000)
        self._lock = threading.Lock()

    # --- entry point ----------------------------------------------------------------------

    def handle(self, request: EmuRequest) -> EmuResponse:
        from tests.emulators import control, runner_service

        operation: str | None = None
        identity: str | None = None
        fault: str | None = None
        path = request.path
        if (
            path.startswith("/_emulator/actions/")
            or path == f"{API_PREFIX}/actions/runner-registration"
        ):
            response, operation = runner_service.handle(self, request)
        elif path.startswith("/_emulator/"):
            response, operation = control.handle(self, request)
        elif path.startswith(f"{API_PREFIX}/"):
            response, operation, identity, fault = self._rest(request, path[len(API_PREFIX) :])
        elif (match := DOWNLOAD_RE.match(path)) and request.method in ("GET", "HEAD"):
            response, operation = self._download(match), "runner-download"
        else:
            response = error(404, "Not Found")
        response.headers.setdefault("x-github-request-id", uuid.uuid4().hex[:20].upper())
        with self._lock:
            self.log.append(
                {
                    "time": self.state.clock.time(),
                    "method": request.method,
                    "path": path,
                    "query": urlencode(request.query),
                    "status": 0 if response.disconnect else response.status,
                    "operation": operation,
                    "identity": identity,
                    "fault": fault,
                }
            )
        return response

    def requests(self, operation: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.log if operation is None or r["operation"] == operation]

    def _violation(self, text: str) -> None:
        with self._lock:
            self.validation_errors.append(text)

    # --- REST -----------------------------------------------------------------------------

    def _rest(
        self, request: EmuRequest, path: str
    ) -> tuple[EmuResponse, str | None, str | None, str | None]:
        found = _route(request.method, path)
        if found is None:
            if self.validator is not None and request.method != "HEAD":
                try:
                    self.validator.validate_request(
                        request.method, path, request.query, request.headers, request.body
                    )
                    self._violation(f"{request.method} {path}: described but not emulated")
                except SpecViolation as exc:
                    self._violation(str(exc))
            return error(404, "Not Found"), None, None, None
        match, operation, handler = found
        response, identity, fault = self._operation(request, path, match, operation, handler)
        if self.validator is not None and not response.disconnect:
            response = self._validated(request, path, operation, response)
        return response, operation, identity, fault

    def _operation(
        self,
        request: EmuRequest,
        path: str,
        match: re.Match[str],
        operation: str,
        handler: Handler,
    ) -> tuple[EmuResponse, str | None, str | None]:
        if self.validator is not None:
            try:
                found = self.validator.validate_request(
                    request.method, path, request.query, request.headers, request.body
                )
                if found.operation_id != operation:
                    self._violation(
                        f"{path}: emulated as {operation}, described as {found.operation_id}"
                    )
            except SpecViolation as exc:
                self._violation(str(exc))
                return error(422, "Invalid request."), None, None
        version = request.headers.get("x-github-api-version")
        if version is not None and version != API_VERSION:
            return error(400, f"API version '{version}' is not supported."), None, None

        identity = self._identify(request)
        if isinstance(identity, EmuResponse):
            return identity, None, None
        fault = self.faults.take(operation, request.method)
        delay = 0.0
        if fault is not None:
            early = self._apply_fault(fault, identity)
            if early is not None:
                return early, identity.kind, fault.kind
            delay = fault.seconds if fault.kind == "latency" else 0.0

        bucket = self.state.bucket(identity.key)
        if bucket.used >= bucket.limit:
            response = error(
                403, f"API rate limit exceeded for {identity.kind} {identity.key[-8:]}.", RATE_DOCS
            )
            response.headers.update(self._rate_headers(identity))
            return response, identity.kind, fault.kind if fault else None

        repository = None  # the scope: a repository, or an organization's login
        if "owner" in match.groupdict():
            repository = self.state.repository(match["owner"], match["repo"])
        elif "org" in match.groupdict():
            repository = self.state.organization(match["org"])
        try:
            refusal = self._authorize(request, operation, identity, repository)
            response = refusal or handler(self, Context(request, match, identity, repository))
        except StateError as exc:
            response = (
                json_response(exc.status, {"message": exc.message, "documentation_url": DOCS})
                if exc.status == 422
                else error(exc.status, exc.message)
            )
        response.delay = delay

        etag = None
        if request.method == "GET" and response.status == 200:
            etag = 'W/"' + hashlib.sha256(response.body).hexdigest() + '"'
            response.headers["etag"] = etag
            response.headers["cache-control"] = "private, max-age=60, s-maxage=60"
            response.headers["vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
            if _etag_matches(request.headers.get("if-none-match"), etag):
                response = EmuResponse(304, {"etag": etag}, b"", delay=delay)
        if response.status != 304:
            self.state.charge(identity.key)
        response.headers.update(self._rate_headers(identity))
        response.headers["x-github-api-version-selected"] = API_VERSION
        response.headers["x-github-media-type"] = "github.v3; format=json"
        if fault is not None and fault.kind == "corrupt" and response.body:
            response.body = _corrupt(response.body)
        return response, identity.kind, fault.kind if fault else None

    def _validated(
        self, request: EmuRequest, path: str, operation: str, response: EmuResponse
    ) -> EmuResponse:
        assert self.validator is not None
        try:
            self.validator.validate_response(
                request.method,
                path,
                query=request.query,
                request_headers=request.headers,
                request_body=request.body,
                status=response.status,
                headers=response.headers,
                body=response.body,
            )
        except SpecViolation as exc:
            self._violation(str(exc))
            return error(500, f"emulator: {operation} answer failed OpenAPI validation")
        return response

    def _rate_headers(self, identity: Identity) -> dict[str, str]:
        bucket = self.state.bucket(identity.key)
        return {
            "x-ratelimit-limit": str(bucket.limit),
            "x-ratelimit-remaining": str(max(0, bucket.limit - bucket.used)),
            "x-ratelimit-reset": str(int(bucket.reset)),
            "x-ratelimit-used": str(bucket.used),
            "x-ratelimit-resource": "core",
        }

    def _apply_fault(self, fault: Fault, identity: Identity) -> EmuResponse | None:
        if fault.kind == "disconnect":
            return EmuResponse(0, disconnect=True)
        if fault.kind == "status":
            message = {500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
            return error(fault.status, message.get(fault.status, "Server Error"))
        if fault.kind == "primary_rate_limit":
            self.state.exhaust(identity.key, fault.reset_in)
            return None  # the exhausted bucket answers below, as GitHub would
        if fault.kind == "secondary_rate_limit":
            response = error(
                fault.status if fault.status in (403, 429) else 403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                "try again.",
                RATE_DOCS + "#about-secondary-rate-limits",
            )
            if fault.retry_after is not None:
                response.headers["retry-after"] = str(fault.retry_after)
            response.headers.update(self._rate_headers(identity))
            return response
        return None  # latency and corrupt act later

    # --- authentication -------------------------------------------------------------------

    def _identify(self, request: EmuRequest) -> Identity | EmuResponse:
        header = request.headers.get("authorization")
        if not header:
            return error(401, "Requires authentication")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() not in ("bearer", "token") or not value:
            return error(401, "Bad credentials")
        if value.startswith("eyJ") and value.count(".") == 2:
            app = self._verify_jwt(value)
            if app is None:
                return error(401, "A JSON web token could not be decoded")
            return Identity("app", f"app:{app.app_id}", app.repositories, app=app)
        with self.state.lock:
            pat = self.state.world.pats.get(digest(value))
        if pat is not None:
            return Identity("pat", f"pat:{digest(value)[:16]}", pat.repositories, pat.permission)
        token = self.state.token(value, ("installation",))
        if token is not None:
            with self.state.lock:
                app = next(
                    (
                        a
                        for a in self.state.world.apps
                        if a.installation_id == token.installation_id
                    ),
                    None,
                )
            if app is not None:
                return Identity(
                    "installation", f"installation:{app.installation_id}", app.repositories, app=app
                )
        return error(401, "Bad credentials")

    def _verify_jwt(self, value: str) -> App | None:
        now = self.state.clock.time()
        with self.state.lock:
            apps = list(self.state.world.apps)
        for app in apps:
            try:
                claims = jwt.decode(
                    value,
                    app.public_key_pem,
                    algorithms=["RS256"],
                    options={
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                        "require": ["iat", "exp", "iss"],
                    },
                )
            except jwt.PyJWTError:
                continue
            iat, exp = float(claims["iat"]), float(claims["exp"])
            if str(claims["iss"]) != app.app_id or iat > now + 60 or exp <= now:
                continue
            if exp - iat > 660 or exp > now + 600:
                continue  # GitHub: `exp` at most ten minutes ahead (iat may be backdated 60 s)
            return app
        return None

    def _authorize(
        self, request: EmuRequest, operation: str, identity: Identity, repository: str | None
    ) -> EmuResponse | None:
        if operation.startswith("apps/"):
            if identity.kind != "app":
                return error(401, "A JSON web token could not be decoded")
            if operation in ("apps/get-repo-installation", "apps/get-org-installation") and (
                repository is None or not identity.sees(repository)
            ):
                return error(404, "Not Found")
            return None
        if identity.kind == "app":
            return error(403, "Resource not accessible by integration")
        if repository is None or not identity.sees(repository):
            return error(404, "Not Found")
        if request.method in WRITE_METHODS and identity.permission != "admin":
            kind = "personal access token" if identity.kind == "pat" else "integration"
            return error(403, f"Resource not accessible by {kind}")
        return None

    # --- downloads ------------------------------------------------------------------------

    def applications(self, base: str) -> list[dict[str, Any]]:
        version = self.runner_version
        release = f"{base}/actions/runner/releases/download/v{version}"
        out = []
        for os_name, arch, ext in (
            ("osx", "x64", "tar.gz"),
            ("linux", "x64", "tar.gz"),
            ("linux", "arm64", "tar.gz"),
            ("win", "x64", "zip"),
        ):
            filename = f"actions-runner-{os_name}-{arch}-{version}.{ext}"
            item: dict[str, Any] = {
                "os": os_name,
                "architecture": arch,
                "download_url": f"{release}/{filename}",
                "filename": filename,
            }
            if (os_name, arch) == ("linux", "x64") and self._tarball_sha256:
                item["sha256_checksum"] = self._tarball_sha256
            else:
                item["sha256_checksum"] = hashlib.sha256(filename.encode()).hexdigest()
            out.append(item)
        return out

    def publish_release(self, version: str) -> dict[str, str]:
        """A new runner release: the runner emulator built as `version` becomes the latest
        (the downloads endpoint offers only the latest, like GitHub's); older ones stay
        downloadable at their release URLs."""
        from tests.emulators.runner.build import build

        with self._lock:
            if version not in self._releases:
                out = Path(tempfile.mkdtemp(prefix=f"gh-emu-release-{version}-"))
                self._releases[version] = build(out, version)
            self.runner_tarball, self._tarball_sha256 = self._releases[version]
            self.runner_version = version
        return {"version": version, "sha256": self._releases[version][1]}

    def _download(self, match: re.Match[str]) -> EmuResponse:
        release = self._releases.get(match[1])
        if release is None or match[2] != release[0].name:
            return EmuResponse(404, {"content-type": "text/plain"}, b"Not Found")
        return EmuResponse(
            200, {"content-type": "application/octet-stream"}, release[0].read_bytes()
        )

    # --- a transport for httpx tests ------------------------------------------------------

    def mock_transport(self, base: str = "https://emulator.invalid") -> httpx.MockTransport:
        """This app as an `httpx.MockTransport`: same semantics, no socket. A `disconnect`
        fault raises httpx.RemoteProtocolError; `latency` raises httpx.ReadTimeout when it
        exceeds the request's read timeout, as a real socket would."""

        def handler(request: httpx.Request) -> httpx.Response:
            emu = EmuRequest(
                method=request.method,
                path=request.url.path,
                query=list(request.url.params.multi_items()),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=request.read(),
                base=f"{request.url.scheme}://{request.url.netloc.decode()}",
            )
            response = self.handle(emu)
            if response.disconnect:
                raise httpx.RemoteProtocolError("Server disconnected", request=request)
            timeout = request.extensions.get("timeout", {}).get("read")
            if response.delay and timeout is not None and response.delay > timeout:
                raise httpx.ReadTimeout("timed out", request=request)
            return httpx.Response(response.status, headers=response.headers, content=response.body)

        del base
        return httpx.MockTransport(handler)


def _route(method: str, path: str) -> tuple[re.Match[str], str, Handler] | None:
    for verb, pattern, operation, handler in ROUTES:
        match = pattern.match(path)
        if match and verb == method:
            return match, operation, handler
    return None


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    bare = etag.removeprefix("W/")
    return any(part.strip().removeprefix("W/") == bare for part in header.split(",")) or (
        header.strip() == "*"
    )


def _corrupt(body: bytes) -> bytes:
    """Drop a field the description requires, wherever the answer has one."""
    document = json.loads(body)
    targets = document.get("runners") if isinstance(document, dict) else None
    if isinstance(document, dict) and "busy" in document:
        del document["busy"]
    elif isinstance(targets, list) and targets:
        targets[0].pop("busy", None)
    elif isinstance(document, dict):
        document.pop("total_count", None)
        document.pop("token", None)
    elif isinstance(document, list) and document:
        document[0].pop("download_url", None)
    return json.dumps(document).encode()


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _page_args(request: EmuRequest) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        try:
            return int(request.arg(name) or default)
        except ValueError:
            return default

    per_page = min(100, max(1, number("per_page", 30)))
    return per_page, max(1, number("page", 1))


def _link(request: EmuRequest, path: str, page: int, last: int, per_page: int) -> str | None:
    if last <= 1:
        return None
    kept = [(k, v) for k, v in request.query if k not in ("page", "per_page")]

    def url(number: int) -> str:
        query = urlencode([*kept, ("per_page", str(per_page)), ("page", str(number))])
        return f"<{request.base}{API_PREFIX}{path}?{query}>"

    parts = []
    if page > 1:
        parts += [f'{url(page - 1)}; rel="prev"']
    if page < last:
        parts += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
    if page > 1:
        parts += [f'{url(1)}; rel="first"']
    return ", ".join(parts)


# --- the REST operations --------------------------------------------------------------------


@route("GET", REPO + r"/actions/runners", "actions/list-self-hosted-runners-for-repo")
def list_runners(app: GitHubApp, ctx: Context) -> EmuResponse:
    assert ctx.repository is not None
    per_page, page = _page_args(ctx.request)
    runners = app.state.runners_of(ctx.repository)
    name = ctx.request.arg("name")
    if name is not None:
        runners = [r for r in runners if r.name.lower() == name.lower()]
    last = max(1, -(-len(runners) // per_page))
    chunk = runners[(page - 1) * per_page : page * per_page]
    path = ctx.request.path[len(API_PREFIX) :]
    link = _link(ctx.request, path, page, last, per_page)
    return json_response(
        200,
        {"total_count": len(runners), "runners": [app.state.api_runner(r) for r in chunk]},
        {"link": link} if link else None,
    )


@route("GET", RUNNER, "actions/get-self-hosted-runner-for-repo")
def get_runner(app: GitHubApp, ctx: Context) -> EmuResponse:
    return json_response(200, app.state.api_runner(ctx.runner(app.state)))


@route("DELETE", RUNNER, "actions/delete-self-hosted-runner-from-repo")
def delete_runner(app: GitHubApp, ctx: Context) -> EmuResponse:
    app.state.delete_runner(ctx.runner(app.state).id)
    return EmuResponse(204)


def _token(app: GitHubApp, ctx: Context, kind: str) -> EmuResponse:
    value, expires = app.state.mint(kind, ctx.repository)
    return json_response(201, {"token": value, "expires_at": iso(expires)})


@route(
    "POST",
    REPO + r"/actions/runners/registration-token",
    "actions/create-registration-token-for-repo",
)
def registration_token(app: GitHubApp, ctx: Context) -> EmuResponse:
    return _token(app, ctx, "registration")


@route("POST", REPO + r"/actions/runners/remove-token", "actions/create-remove-token-for-repo")
def remove_token(app: GitHubApp, ctx: Context) -> EmuResponse:
    return _token(app, ctx, "remove")


@route("GET", REPO + r"/actions/runners/downloads", "actions/list-runner-applications-for-repo")
def downloads(app: GitHubApp, ctx: Context) -> EmuResponse:
    return json_response(200, app.applications(ctx.request.base))


def _labels(labels: list[Any]) -> EmuResponse:
    return json_response(
        200, {"total_count": len(labels), "labels": [label.api() for label in labels]}
    )


def _label_names(ctx: Context, minimum: int) -> list[str]:
    body = ctx.request.json()
    names = body.get("labels") if isinstance(body, dict) else None
    if (
        not isinstance(names, list)
        or not minimum <= len(names) <= 100
        or not all(isinstance(n, str) and n.strip() for n in names)
    ):
        raise StateError(422, "Validation Failed")
    return [n.strip() for n in names]


@route("GET", RUNNER + r"/labels", "actions/list-labels-for-self-hosted-runner-for-repo")
def list_labels(app: GitHubApp, ctx: Context) -> EmuResponse:
    return _labels(ctx.runner(app.state).labels)


@route("PUT", RUNNER + r"/labels", "actions/set-custom-labels-for-self-hosted-runner-for-repo")
def set_labels(app: GitHubApp, ctx: Context) -> EmuResponse:
    runner = ctx.runner(app.state)
    return _labels(app.state.set_custom_labels(runner, _label_names(ctx, 0)))


@route("POST", RUNNER + r"/labels", "actions/add-custom-labels-to-self-hosted-runner-for-repo")
def add_labels(app: GitHubApp, ctx: Context) -> EmuResponse:
    runner = ctx.runner(app.state)
    return _labels(app.state.add_custom_labels(runner, _label_names(ctx, 1)))


@route(
    "DELETE",
    RUNNER + r"/labels",
    "actions/remove-all-custom-labels-from-self-hosted-runner-for-repo",
)
def remove_all_labels(app: GitHubApp, ctx: Context) -> EmuResponse:
    return _labels(app.state.set_custom_labels(ctx.runner(app.state), []))


@route(
    "DELETE",
    RUNNER + r"/labels/(?P<name>[^/]+)",
    "actions/remove-custom-label-from-self-hosted-runner-for-repo",
)
def remove_label(app: GitHubApp, ctx: Context) -> EmuResponse:
    from urllib.parse import unquote

    runner = ctx.runner(app.state)
    return _labels(app.state.remove_custom_label(runner, unquote(ctx.match["name"])))


@route("GET", REPO + r"/installation", "apps/get-repo-installation")
def get_installation(app: GitHubApp, ctx: Context) -> EmuResponse:
    assert ctx.identity.app is not None
    assert ctx.repository is not None
    owner = ctx.repository.split("/")[0]
    installation_id = ctx.identity.app.installation_id
    api = f"{ctx.request.base}{API_PREFIX}"
    account = {
        "login": owner,
        "id": 1,
        "node_id": "MDQ6VXNlcjE=",
        "avatar_url": f"{ctx.request.base}/avatars/{owner}",
        "gravatar_id": "",
        "url": f"{api}/users/{owner}",
        "html_url": f"{ctx.request.base}/{owner}",
        "followers_url": f"{api}/users/{owner}/followers",
        "following_url": f"{api}/users/{owner}/following{{/other_user}}",
        "gists_url": f"{api}/users/{owner}/gists{{/gist_id}}",
        "starred_url": f"{api}/users/{owner}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/users/{owner}/subscriptions",
        "organizations_url": f"{api}/users/{owner}/orgs",
        "repos_url": f"{api}/users/{owner}/repos",
        "events_url": f"{api}/users/{owner}/events{{/privacy}}",
        "received_events_url": f"{api}/users/{owner}/received_events",
        "type": "Organization",
        "site_admin": False,
    }
    created = iso(0)
    return json_response(
        200,
        {
            "id": installation_id,
            "account": account,
            "access_tokens_url": f"{api}/app/installations/{installation_id}/access_tokens",
            "repositories_url": f"{api}/installation/repositories",
            "html_url": f"{ctx.request.base}/organizations/{owner}/settings/installations/"
            f"{installation_id}",
            "app_id": int(ctx.identity.app.app_id) if ctx.identity.app.app_id.isdigit() else 1,
            "app_slug": "launchplane-emulated",
            "target_id": 1,
            "target_type": "Organization",
            "permissions": {"administration": "write", "metadata": "read"},
            "events": [],
            "created_at": created,
            "updated_at": created,
            "single_file_name": None,
            "repository_selection": "selected",
            "suspended_by": None,
            "suspended_at": None,
        },
    )


@route(
    "POST",
    r"/app/installations/(?P<installation_id>[0-9]+)/access_tokens",
    "apps/create-installation-access-token",
)
def installation_token(app: GitHubApp, ctx: Context) -> EmuResponse:
    assert ctx.identity.app is not None
    installation_id = int(ctx.match["installation_id"])
    if installation_id != ctx.identity.app.installation_id:
        return error(404, "Not Found")
    value, expires = app.state.mint("installation", None, installation_id=installation_id)
    return json_response(
        201,
        {
            "token": value,
            "expires_at": iso(expires),
            "permissions": {"administration": "write", "metadata": "read"},
            "repository_selection": "selected",
        },
    )


from tests.emulators import github_orgs  # noqa: E402 - registers the organization routes

del github_orgs
