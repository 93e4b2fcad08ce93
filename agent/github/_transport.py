"""One GitHub request: retries, rate-limit waits within their budgets, ETag revalidation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, TypeVar, Unpack

import httpx
import structlog
from pydantic import BaseModel, SecretStr

from agent.github import payloads
from agent.github._waits import Clock, Retry, Sleep, Waits, rate_limit_wait
from agent.github.cache import CachedResponse, EtagCache
from agent.github.errors import (
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubProtocolError,
    GitHubRateLimited,
    GitHubUnavailable,
    GitHubValidationFailed,
)
from agent.github.models import RequestStats
from agent.github.settings import GitHubSettings

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
__all__ = [
    "REQUIRED_PERMISSION",
    "RETRYABLE_STATUS",
    "Answer",
    "Clock",
    "Retry",
    "SendOptions",
    "Sleep",
    "Transport",
    "utcnow",
]

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
REQUIRED_PERMISSION = "'Administration: read and write' (fine-grained or App) or the repo scope"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Answer:
    """A 2xx answer: its body and Link header (after a 304, the cached ones)."""

    content: bytes
    link: str | None


class SendOptions(TypedDict, total=False):
    """What a request may add: query, JSON body, and how the ETag cache takes part."""

    params: Mapping[str, str | int] | None
    body: Any
    conditional: bool
    fresh: bool
    schema: type[BaseModel] | None


class Transport:
    """Sends one request at a time over `http`, counting into the client's shared `stats`.

    Retries only repeat what is safe (5xx, network errors, rate limits); when and how long to
    wait is `agent.github._waits` (GitHub's rate-limit headers, the wait budgets)."""

    def __init__(
        self,
        settings: GitHubSettings,
        stats: RequestStats,
        http: httpx.Client,
        etags: EtagCache,
        *,
        sleep: Sleep,
        clock: Clock,
        credential_source: str,
    ) -> None:
        self.settings = settings
        self.stats = stats
        self.http = http
        self._etags = etags
        self._waits = Waits(settings, stats, sleep)
        self._clock = clock
        self._credential_source = credential_source or "(the agent's GitHub credential)"

    def send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        authorization: Callable[[], SecretStr],
        reauthenticate: Callable[[], bool] | None = None,
        **options: Unpack[SendOptions],
    ) -> Answer:
        """One request with retries. `conditional`: the answer is kept in the ETag cache (only
        after it parsed as `schema`) and revalidated with `If-None-Match` unless `fresh`.
        `reauthenticate` is asked once after a 401 whether a fresh credential may pass."""
        state: dict[str, Any] = {"secondary": 0, "reauthenticated": False, "waited": 0.0}
        conditional, fresh = options.get("conditional", False), options.get("fresh", False)

        def attempt() -> Answer:
            request = self.http.build_request(
                method,
                url,
                params=options.get("params"),
                json=options.get("body"),
                headers={"Authorization": f"Bearer {authorization().get_secret_value()}"},
            )
            key = str(request.url) if conditional else None
            cached = self._etags.get(key) if key and not fresh else None
            if cached is not None:
                request.headers["If-None-Match"] = cached.etag
            try:
                response = self.http.send(request)
            except httpx.TransportError as exc:
                self.stats.observe(operation, 0, {})
                raise Retry(
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
                reauthenticate=reauthenticate,
                schema=options.get("schema"),
            )

        return self.retrying(operation, attempt, state)

    def _classify(
        self,
        operation: str,
        *,
        response: httpx.Response,
        key: str | None,
        cached: CachedResponse | None,
        state: dict[str, Any],
        reauthenticate: Callable[[], bool] | None,
        schema: type[BaseModel] | None,
    ) -> Answer:
        status = response.status_code
        if status == 304 and cached is not None and key is not None:
            content = cached.body.encode()
            if not payloads.parses(schema, content, operation):
                # never happens for a body that parsed when stored, unless the schema changed
                # under it: forget the entry and ask again without If-None-Match
                self._etags.drop(key)
                raise Retry(
                    GitHubProtocolError("cached body no longer parses", operation=operation), 0.0
                )
            return Answer(content, cached.link)
        if 200 <= status < 300:
            link = response.headers.get("link")
            etag = response.headers.get("etag")
            if key is not None:
                if etag and payloads.parses(schema, response.content, operation):
                    self._etags.put(key, CachedResponse.of(etag, response.text, link))
                else:
                    self._etags.drop(key)  # a body that does not parse is never kept
            return Answer(response.content, link)
        message = payloads.error_message(response.content, response.reason_phrase)
        if status == 401:
            if not state["reauthenticated"] and reauthenticate is not None and reauthenticate():
                state["reauthenticated"] = True
                raise Retry(GitHubAuthError(message, operation=operation, status=status), 0.0)
            raise GitHubAuthError(
                f"{message}; the credential {self._credential_source} was refused "
                "(revoked, expired or wrong): replace it",
                operation=operation,
                status=status,
            )
        if status in (403, 429):
            wait = rate_limit_wait(response, message, self.settings, self._clock, state)
            if wait is None:
                raise GitHubAuthError(
                    f"{message}; the credential {self._credential_source} lacks the "
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
            if not self._waits.may_wait(wait, state):
                raise limited
            raise Retry(limited, wait)
        if status == 404:
            raise GitHubNotFound(message, operation=operation, status=status)
        if status == 422:
            raise GitHubValidationFailed(message, operation=operation, status=status)
        if status in RETRYABLE_STATUS:
            raise Retry(GitHubUnavailable(message, operation=operation, status=status))
        raise GitHubError(message, operation=operation, status=status)

    def retrying(
        self, operation: str, attempt: Callable[[], _T], state: dict[str, Any] | None = None
    ) -> _T:
        """`attempt` with this client's retries and wait budgets (agent.github._waits)."""
        return self._waits.retrying(operation, attempt, state)
