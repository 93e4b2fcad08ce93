"""One GitHub request: retries, rate-limit waits within their budgets, ETag revalidation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, TypeVar, Unpack

import httpx
import structlog
import tenacity
from pydantic import BaseModel, SecretStr

from agent.github import payloads
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

log = structlog.get_logger("agent.github")

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
_T = TypeVar("_T")

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


class Retry(Exception):
    """Internal: this attempt failed in a way that may pass; `delay` overrides the backoff."""

    def __init__(self, error: GitHubError, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


class Transport:
    """Sends one request at a time over `http`, counting into the client's shared `stats`.

    Retries only repeat what is safe (5xx, network errors, rate limits); waits honour GitHub's
    rate-limit headers within the per-wait, per-call and per-client budgets of `settings`."""

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
        self._sleep = sleep
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
            wait = self._rate_limit_wait(response, message, state)
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
            if not self._may_wait(wait, state):
                raise limited
            raise Retry(limited, wait)
        if status == 404:
            raise GitHubNotFound(message, operation=operation, status=status)
        if status == 422:
            raise GitHubValidationFailed(message, operation=operation, status=status)
        if status in RETRYABLE_STATUS:
            raise Retry(GitHubUnavailable(message, operation=operation, status=status))
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
        if isinstance(error, Retry) and error.delay is not None:
            return error.delay
        exponent = max(0, retry_state.attempt_number - 1)
        return float(min(self.settings.backoff_max, self.settings.backoff_initial * 2**exponent))

    def _before_sleep(self, operation: str) -> Callable[[tenacity.RetryCallState], None]:
        def hook(retry_state: tenacity.RetryCallState) -> None:
            self.stats.retries += 1
            outcome = retry_state.outcome
            error = outcome.exception() if outcome is not None else None
            reason = error.error.code if isinstance(error, Retry) else "error"
            status = error.error.status if isinstance(error, Retry) else None
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

    def retrying(
        self, operation: str, attempt: Callable[[], _T], state: dict[str, Any] | None = None
    ) -> _T:
        """`attempt` until it returns, raises a final error, or the attempts or waits run out;
        a `Retry` that is not repeated surfaces as the GitHubError it carries."""
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
            retry=tenacity.retry_if_exception_type(Retry),
            sleep=self._sleep,
            before_sleep=self._before_sleep(operation),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except Retry as exc:
            raise exc.error from None
