"""The agent's only conversation with GitHub: the repository runner endpoints, over httpx."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import structlog
import tenacity
from pydantic import BaseModel, SecretStr

from agent.contracts import GithubInventory, GithubLabel, GithubRunner
from agent.github import payloads
from agent.github.auth import AppCredential, Credential, InstallationTokens
from agent.github.cache import CachedResponse, EtagCache
from agent.github.errors import (
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubProtocolError,
    GitHubRateLimited,
    GitHubRunnerBusy,
    GitHubUnavailable,
    GitHubValidationFailed,
)
from agent.github.models import RequestStats, RunnerDownload, RunnerToken
from agent.github.payloads import inventory_named
from agent.github.settings import GitHubSettings, base_url
from helper.contract.identifiers import canonical_repository
from helper.contract.redact import REDACTOR

log = structlog.get_logger("agent.github")

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
_T = TypeVar("_T")

LIST_RUNNERS = "actions/list-self-hosted-runners-for-repo"
GET_RUNNER = "actions/get-self-hosted-runner-for-repo"
DELETE_RUNNER = "actions/delete-self-hosted-runner-from-repo"
REGISTRATION_TOKEN = "actions/create-registration-token-for-repo"  # noqa: S105 - an operationId
REMOVE_TOKEN = "actions/create-remove-token-for-repo"  # noqa: S105 - an operationId
RUNNER_DOWNLOADS = "actions/list-runner-applications-for-repo"
SET_CUSTOM_LABELS = "actions/set-custom-labels-for-self-hosted-runner-for-repo"
GET_INSTALLATION = "apps/get-repo-installation"
INSTALLATION_TOKEN = "apps/create-installation-access-token"  # noqa: S105 - an operationId
DOWNLOAD = "runner-application-download"  # not a REST operation: the release file itself

USED_OPERATIONS = frozenset(
    {
        LIST_RUNNERS,
        GET_RUNNER,
        DELETE_RUNNER,
        REGISTRATION_TOKEN,
        REMOVE_TOKEN,
        RUNNER_DOWNLOADS,
        SET_CUSTOM_LABELS,
        GET_INSTALLATION,
        INSTALLATION_TOKEN,
    }
)
"""Every operationId of GitHub's OpenAPI description that this adapter calls."""

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
REQUIRED_PERMISSION = "'Administration: read and write' (fine-grained or App) or the repo scope"
MAX_LABELS = 100
FILENAME_RE = re.compile(r"actions-runner-[A-Za-z0-9_.-]+\.(?:tar\.gz|zip)")
LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="([^"]+)"')


def utcnow() -> datetime:
    return datetime.now(UTC)


def _github_message(response: httpx.Response) -> str:
    """GitHub's own `message` from an error body, short; never the body itself."""
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or "error"
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:300] if message else (response.reason_phrase or "error")


def _parses(schema: type[BaseModel] | None, content: bytes, operation: str) -> bool:
    if schema is None:
        return True
    try:
        payloads.parse(schema, content, operation)
    except GitHubProtocolError:
        return False
    return True


def _split_link(header: str | None) -> dict[str, str]:
    return {rel: url for url, rel in LINK_RE.findall(header or "")}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_digest(actual: str, expected: str, name: str) -> None:
    if actual != expected:
        raise GitHubProtocolError(
            f"{name}: sha256 mismatch; download discarded", operation=DOWNLOAD
        )


@dataclass(frozen=True)
class _Answer:
    status: int
    content: bytes
    link: str | None
    not_modified: bool = False


class _Retry(Exception):
    """Internal: this attempt failed in a way that may pass; `delay` overrides the backoff."""

    def __init__(self, error: GitHubError, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


class GitHubClient:
    """Repository-level self-hosted runner endpoints, with retries that only repeat what is safe
    (5xx, network errors, rate limits; every call here is idempotent or harmless to repeat),
    waits that honour GitHub's rate-limit headers, and ETag revalidation for every listing.

    `transport` is the seam for tests (httpx.MockTransport); `sleep` and `clock` are injected so
    that no test waits in real time."""

    def __init__(
        self,
        settings: GitHubSettings,
        credential: Credential,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = utcnow,
        etag_cache: EtagCache | None = None,
    ) -> None:
        self.settings = settings
        self.stats = RequestStats()
        self._credential = credential
        self._sleep = sleep
        self._clock = clock
        self._etags = etag_cache if etag_cache is not None else EtagCache(settings.cache_dir)
        self._installations = InstallationTokens()
        self._http = httpx.Client(
            base_url=settings.api_url + "/",
            transport=transport,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": settings.api_version,
                "User-Agent": settings.user_agent,
            },
            follow_redirects=False,
        )

    # --- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- public operations ----------------------------------------------------------------------

    def list_runners(self, repository: str) -> list[GithubRunner]:
        """Every runner of the repository, all pages (`per_page`, following `Link: rel=next`)."""
        return list(self._runners(repository, {}))

    def runners_named(self, repository: str, name: str, *, fresh: bool = False) -> GithubInventory:
        """The runners named `name` (GitHub's `name` filter, checked again here). `fresh` asks
        GitHub unconditionally (no `If-None-Match`): what a verification after a change reads,
        so that no cached body can stand in for GitHub's current answer."""
        runners = self._runners(repository, {"name": name}, fresh=fresh)
        return inventory_named(list(runners), name)

    def get_runner(self, repository: str, runner_id: int) -> GithubRunner:
        """One runner; GitHubNotFound if it does not exist."""
        answer = self._send(
            GET_RUNNER,
            "GET",
            f"{self._repo_path(repository)}/actions/runners/{int(runner_id)}",
            repository=repository,
            conditional=True,
            schema=payloads.ApiRunner,
        )
        return payloads.runner(
            payloads.parse(payloads.ApiRunner, answer.content, GET_RUNNER), GET_RUNNER
        )

    def delete_runner(self, repository: str, runner_id: int) -> bool:
        """Delete a runner registration. True if deleted, False if it was already gone (a
        success: the desired end state holds). GitHubRunnerBusy if it is running a job."""
        try:
            self._send(
                DELETE_RUNNER,
                "DELETE",
                f"{self._repo_path(repository)}/actions/runners/{int(runner_id)}",
                repository=repository,
            )
        except GitHubNotFound:
            log.info("github.runner_already_gone", repository=repository, runner_id=runner_id)
            return False
        except GitHubValidationFailed as exc:
            raise GitHubRunnerBusy(
                f"runner {runner_id} is busy (GitHub refused the delete)",
                operation=DELETE_RUNNER,
                status=exc.status,
            ) from None
        return True

    def registration_token(self, repository: str) -> RunnerToken:
        """A fresh registration token (valid one hour), registered with the redactor."""
        return self._token(repository, "registration", REGISTRATION_TOKEN, "registration-token")

    def remove_token(self, repository: str) -> RunnerToken:
        """A fresh remove token (valid one hour), registered with the redactor."""
        return self._token(repository, "remove", REMOVE_TOKEN, "remove-token")

    def runner_downloads(self, repository: str) -> list[RunnerDownload]:
        """The runner applications GitHub offers this repository, with their sha256."""
        answer = self._send(
            RUNNER_DOWNLOADS,
            "GET",
            f"{self._repo_path(repository)}/actions/runners/downloads",
            repository=repository,
        )  # not conditional: an answer may carry a temp_download_token, so it is never cached
        items = payloads.parse(payloads.ApplicationList, answer.content, RUNNER_DOWNLOADS).root
        out = []
        for item in items:
            temp = item.temp_download_token
            if temp:
                REDACTOR.register(temp)
            out.append(
                RunnerDownload(
                    os=item.os,
                    architecture=item.architecture,
                    download_url=item.download_url,
                    filename=item.filename,
                    sha256_checksum=item.sha256_checksum,
                    temp_download_token=SecretStr(temp) if temp else None,
                )
            )
        return out

    def set_custom_labels(
        self, repository: str, runner_id: int, labels: Sequence[str]
    ) -> tuple[GithubLabel, ...]:
        """Replace the runner's custom labels; returns every label it now has."""
        names = list(labels)
        if len(names) > MAX_LABELS or not all(isinstance(n, str) and n for n in names):
            raise GitHubValidationFailed(
                f"labels must be at most {MAX_LABELS} non-empty strings",
                operation=SET_CUSTOM_LABELS,
            )
        answer = self._send(
            SET_CUSTOM_LABELS,
            "PUT",
            f"{self._repo_path(repository)}/actions/runners/{int(runner_id)}/labels",
            repository=repository,
            body={"labels": names},
        )
        parsed = payloads.parse(payloads.ApiLabels, answer.content, SET_CUSTOM_LABELS)
        return tuple(payloads.label(item) for item in parsed.labels)

    def download_runner(self, download: RunnerDownload, directory: Path) -> Path:
        """The runner archive in `directory`, verified against its sha256: reused if already
        there and intact, else downloaded (no GitHub credential is sent with it), checked,
        and moved into place atomically. A missing checksum is refused, never trusted."""
        checksum = (download.sha256_checksum or "").lower()
        if not re.fullmatch(r"[0-9a-f]{64}", checksum):
            raise GitHubProtocolError(
                f"{download.filename}: no valid sha256_checksum; refusing an unverified runner",
                operation=DOWNLOAD,
            )
        if not FILENAME_RE.fullmatch(download.filename):
            raise GitHubProtocolError(
                f"unexpected file name {download.filename!r}", operation=DOWNLOAD
            )
        try:
            url = base_url(download.download_url)
        except ValueError as exc:
            raise GitHubProtocolError(f"download_url: {exc}", operation=DOWNLOAD) from None
        target = directory / download.filename
        if target.is_file() and _sha256_file(target) == checksum:
            return target
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        headers = {"Accept": "application/octet-stream"}
        if download.temp_download_token is not None:
            headers["Authorization"] = f"Bearer {download.temp_download_token.get_secret_value()}"

        def attempt() -> Path:
            return self._download_once(url, headers, directory, target, checksum)

        return self._retrying(DOWNLOAD, attempt)

    # --- internals: runners -------------------------------------------------------------------

    def _runners(
        self, repository: str, filters: Mapping[str, str], *, fresh: bool = False
    ) -> Iterator[GithubRunner]:
        seen: set[int] = set()
        params: dict[str, str | int] | None = {**filters, "per_page": self.settings.per_page}
        url = f"{self._repo_path(repository)}/actions/runners"
        for _page in range(10_000):
            answer = self._send(
                LIST_RUNNERS,
                "GET",
                url,
                repository=repository,
                params=params,
                conditional=True,
                fresh=fresh,
                schema=payloads.ApiRunnerPage,
            )
            page = payloads.parse(payloads.ApiRunnerPage, answer.content, LIST_RUNNERS)
            for api in page.runners:
                if api.id not in seen:
                    seen.add(api.id)
                    yield payloads.runner(api, LIST_RUNNERS)
            following = _split_link(answer.link).get("next")
            if not following:
                return
            if urlsplit(following)[:2] != urlsplit(self.settings.api_url)[:2]:
                raise GitHubProtocolError(
                    "Link rel=next leaves the API host", operation=LIST_RUNNERS
                )
            url, params = following, None
        raise GitHubProtocolError("too many pages", operation=LIST_RUNNERS)

    def _token(
        self,
        repository: str,
        kind: Literal["registration", "remove"],
        operation: str,
        endpoint: str,
    ) -> RunnerToken:
        answer = self._send(
            operation,
            "POST",
            f"{self._repo_path(repository)}/actions/runners/{endpoint}",
            repository=repository,
        )
        token, expires_at = self._secret_and_expiry(answer.content, operation)
        log.info(
            "github.token_issued",
            kind=kind,
            repository=repository,
            expires_at=expires_at.isoformat(),
        )
        return RunnerToken(
            kind=kind, repository=repository, token=SecretStr(token), expires_at=expires_at
        )

    @staticmethod
    def _secret_and_expiry(content: bytes, operation: str) -> tuple[str, datetime]:
        """`token` and `expires_at` of a token answer. The token is registered with the redactor
        before anything else looks at the answer, so no later error or log can show it."""
        try:
            data = json.loads(content)
        except ValueError:
            raise GitHubProtocolError("token answer is not JSON", operation=operation) from None
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise GitHubProtocolError("token answer without a token", operation=operation)
        REDACTOR.register(token)
        raw_expiry = data.get("expires_at")
        try:
            expires_at = datetime.fromisoformat(str(raw_expiry).replace("Z", "+00:00"))
        except ValueError:
            raise GitHubProtocolError(
                "token answer with a bad expires_at", operation=operation
            ) from None
        if expires_at.tzinfo is None:
            raise GitHubProtocolError("token answer with a naive expires_at", operation=operation)
        return token, expires_at

    # --- internals: authentication ------------------------------------------------------------

    def _authorization(self, repository: str) -> Callable[[], SecretStr]:
        credential = self._credential
        if isinstance(credential, AppCredential):
            return lambda: self._installation_token(repository, credential)
        return lambda: credential.token

    def _app_jwt(self, credential: AppCredential) -> Callable[[], SecretStr]:
        return lambda: credential.jwt(self._clock())

    def _installation_id(self, repository: str, credential: AppCredential) -> int:
        if credential.installation_id is not None:
            return credential.installation_id
        known = self._installations.installation_for(repository)
        if known is not None:
            return known
        answer = self._send(
            GET_INSTALLATION,
            "GET",
            f"{self._repo_path(repository)}/installation",
            authorization=self._app_jwt(credential),
        )
        installation = payloads.parse(payloads.ApiInstallation, answer.content, GET_INSTALLATION).id
        self._installations.remember_installation(repository, installation)
        return installation

    def _installation_token(self, repository: str, credential: AppCredential) -> SecretStr:
        installation = self._installation_id(repository, credential)
        token = self._installations.valid(installation, self._clock())
        if token is not None:
            return token
        answer = self._send(
            INSTALLATION_TOKEN,
            "POST",
            f"/app/installations/{installation}/access_tokens",
            authorization=self._app_jwt(credential),
        )
        value, expires_at = self._secret_and_expiry(answer.content, INSTALLATION_TOKEN)
        secret = SecretStr(value)
        self._installations.store(installation, secret, expires_at)
        log.info(
            "github.installation_token_issued",
            installation_id=installation,
            expires_at=expires_at.isoformat(),
        )
        return secret

    def _forget_installation_token(self, repository: str) -> bool:
        credential = self._credential
        if not isinstance(credential, AppCredential):
            return False
        installation = credential.installation_id or self._installations.installation_for(
            repository
        )
        if installation is None:
            return False
        self._installations.forget(installation)
        return True

    # --- internals: one request with retries --------------------------------------------------

    @staticmethod
    def _repo_path(repository: str) -> str:
        try:
            owner, name = canonical_repository(repository).split("/")
        except ValueError as exc:
            raise GitHubValidationFailed(str(exc)) from None
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def _send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        repository: str | None = None,
        authorization: Callable[[], SecretStr] | None = None,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        conditional: bool = False,
        fresh: bool = False,
        schema: type[BaseModel] | None = None,
    ) -> _Answer:
        """One request with retries. `conditional`: the answer is kept in the ETag cache (only
        after it parsed as `schema`) and revalidated with `If-None-Match` unless `fresh`."""
        if authorization is None:
            if repository is None:
                raise ValueError("a request needs a repository or an authorization")
            authorization = self._authorization(repository)
        state: dict[str, Any] = {"secondary": 0, "reauthenticated": False, "waited": 0.0}

        def attempt() -> _Answer:
            request = self._http.build_request(
                method,
                url,
                params=params,
                json=body,
                headers={"Authorization": f"Bearer {authorization().get_secret_value()}"},
            )
            key = str(request.url) if conditional else None
            cached = self._etags.get(key) if key and not fresh else None
            if cached is not None:
                request.headers["If-None-Match"] = cached.etag
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                self.stats.observe(operation, 0, {})
                raise _Retry(
                    GitHubUnavailable(f"network error: {type(exc).__name__}", operation=operation)
                ) from None
            self.stats.observe(operation, response.status_code, response.headers)
            log.debug(
                "github.request",
                operation=operation,
                method=method,
                path=request.url.path,
                status=response.status_code,
                ratelimit_remaining=response.headers.get("x-ratelimit-remaining"),
            )
            return self._classify(
                operation,
                response=response,
                key=key,
                cached=cached,
                state=state,
                repository=repository,
                schema=schema,
            )

        return self._retrying(operation, attempt, state)

    def _classify(
        self,
        operation: str,
        *,
        response: httpx.Response,
        key: str | None,
        cached: CachedResponse | None,
        state: dict[str, Any],
        repository: str | None,
        schema: type[BaseModel] | None,
    ) -> _Answer:
        status = response.status_code
        if status == 304 and cached is not None and key is not None:
            content = cached.body.encode()
            if not _parses(schema, content, operation):
                # never happens for a body that parsed when stored, unless the schema changed
                # under it: forget the entry and ask again without If-None-Match
                self._etags.drop(key)
                raise _Retry(
                    GitHubProtocolError("cached body no longer parses", operation=operation), 0.0
                )
            return _Answer(200, content, cached.link, not_modified=True)
        if 200 <= status < 300:
            link = response.headers.get("link")
            etag = response.headers.get("etag")
            if key is not None:
                if etag and _parses(schema, response.content, operation):
                    self._etags.put(key, CachedResponse.of(etag, response.text, link))
                else:
                    self._etags.drop(key)  # a body that does not parse is never kept
            return _Answer(status, response.content, link)
        message = _github_message(response)
        if status == 401:
            if (
                not state["reauthenticated"]
                and repository is not None
                and self._forget_installation_token(repository)
            ):
                state["reauthenticated"] = True
                raise _Retry(GitHubAuthError(message, operation=operation, status=status), 0.0)
            raise GitHubAuthError(
                f"{message}; the credential {self._credential_source()} was refused "
                "(revoked, expired or wrong): replace it",
                operation=operation,
                status=status,
            )
        if status in (403, 429):
            wait = self._rate_limit_wait(response, message, state)
            if wait is None:
                raise GitHubAuthError(
                    f"{message}; the credential {self._credential_source()} lacks the "
                    f"permission: it needs {REQUIRED_PERMISSION} on the repository",
                    operation=operation,
                    status=status,
                )
            limited = GitHubRateLimited(
                message,
                operation=operation,
                status=status,
                delay=wait,
                retry_at=self._clock() + timedelta(seconds=wait),
            )
            if not self._may_wait(wait, state):
                raise limited
            raise _Retry(limited, wait)
        if status == 404:
            raise GitHubNotFound(message, operation=operation, status=status)
        if status == 422:
            raise GitHubValidationFailed(message, operation=operation, status=status)
        if status in RETRYABLE_STATUS:
            raise _Retry(GitHubUnavailable(message, operation=operation, status=status))
        raise GitHubError(message, operation=operation, status=status)

    def _rate_limit_wait(
        self, response: httpx.Response, message: str, state: dict[str, Any]
    ) -> float | None:
        """Seconds to wait if this 403/429 is a rate limit (GitHub's documented order:
        `retry-after`; else `x-ratelimit-remaining: 0` until `x-ratelimit-reset`; else a
        secondary limit: at least a minute, doubling while it persists). None if it is not."""
        headers = response.headers
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                pass
        if headers.get("x-ratelimit-remaining") == "0":
            try:
                reset = float(headers["x-ratelimit-reset"])
            except (KeyError, ValueError):
                return self.settings.secondary_min_wait
            return max(0.0, reset - self._clock().timestamp()) + 1.0
        text = message.lower()
        if response.status_code == 429 or "rate limit" in text or "abuse" in text:
            state["secondary"] += 1
            return float(self.settings.secondary_min_wait * 2 ** (state["secondary"] - 1))
        return None

    def _backoff(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Retry) and error.delay is not None:
            return error.delay
        exponent = max(0, retry_state.attempt_number - 1)
        return float(min(self.settings.backoff_max, self.settings.backoff_initial * 2**exponent))

    def _before_sleep(self, operation: str) -> Callable[[tenacity.RetryCallState], None]:
        def hook(retry_state: tenacity.RetryCallState) -> None:
            self.stats.retries += 1
            outcome = retry_state.outcome
            error = outcome.exception() if outcome is not None else None
            reason = error.error.code if isinstance(error, _Retry) else "error"
            status = error.error.status if isinstance(error, _Retry) else None
            delay = retry_state.next_action.sleep if retry_state.next_action else None
            log.warning(
                "github.retry",
                operation=operation,
                attempt=retry_state.attempt_number,
                reason=reason,
                status=status,
                delay=delay,
            )

        return hook

    def _credential_source(self) -> str:
        return self._credential.source or "(the agent's GitHub credential)"

    def _may_wait(self, seconds: float, state: dict[str, Any]) -> bool:
        """Whether a wait of `seconds` fits: one wait at most `max_rate_limit_wait`, all waits
        of one call at most `max_wait_per_call`, of the whole client (one pass or one command)
        at most `max_wait_per_pass` — all below the agent unit's start timeout."""
        settings = self.settings
        return (
            seconds <= settings.max_rate_limit_wait
            and state["waited"] + seconds <= settings.max_wait_per_call
            and self.stats.waited_seconds + seconds <= settings.max_wait_per_pass
        )

    def _retrying(
        self, operation: str, attempt: Callable[[], _T], state: dict[str, Any] | None = None
    ) -> _T:
        call = state if state is not None else {"waited": 0.0}

        def out_of_budget(retry_state: tenacity.RetryCallState) -> bool:
            if retry_state.attempt_number >= self.settings.max_attempts:
                return True
            if not self._may_wait(retry_state.upcoming_sleep, call):
                return True
            call["waited"] += retry_state.upcoming_sleep
            self.stats.waited_seconds += retry_state.upcoming_sleep
            return False

        retrying = tenacity.Retrying(
            stop=out_of_budget,
            wait=self._backoff,
            retry=tenacity.retry_if_exception_type(_Retry),
            sleep=self._sleep,
            before_sleep=self._before_sleep(operation),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retry as exc:
            raise exc.error from None

    # --- internals: download ------------------------------------------------------------------

    def _download_once(
        self, url: str, headers: dict[str, str], directory: Path, target: Path, checksum: str
    ) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as handle:
                try:
                    with self._http.stream("GET", url, headers=headers, follow_redirects=True) as r:
                        self.stats.observe(DOWNLOAD, r.status_code, {})
                        if r.status_code in RETRYABLE_STATUS:
                            raise _Retry(
                                GitHubUnavailable(
                                    "download failed", operation=DOWNLOAD, status=r.status_code
                                )
                            )
                        if r.status_code != 200:
                            raise GitHubError(
                                "download failed", operation=DOWNLOAD, status=r.status_code
                            )
                        for chunk in r.iter_bytes():
                            size += len(chunk)
                            if size > self.settings.max_download_bytes:
                                raise GitHubProtocolError("download too large", operation=DOWNLOAD)
                            digest.update(chunk)
                            handle.write(chunk)
                except httpx.TransportError as exc:
                    raise _Retry(
                        GitHubUnavailable(
                            f"network error: {type(exc).__name__}", operation=DOWNLOAD
                        )
                    ) from None
                handle.flush()
                os.fsync(handle.fileno())
            _check_digest(digest.hexdigest(), checksum, target.name)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        log.info("github.runner_downloaded", filename=target.name, bytes=size)
        return target
