"""When to try a GitHub request again: rate-limit waits from GitHub's headers, backoff, and
the per-wait, per-call and per-client wait budgets (all below the agent unit's start timeout)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import httpx
import structlog
import tenacity

from agent.github.errors import GitHubError
from agent.github.models import RequestStats
from agent.github.settings import GitHubSettings

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
_T = TypeVar("_T")


class Retry(Exception):
    """Internal: this attempt failed in a way that may pass; `delay` overrides the backoff."""

    def __init__(self, error: GitHubError, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


def rate_limit_wait(
    response: httpx.Response,
    message: str,
    settings: GitHubSettings,
    clock: Clock,
    state: dict[str, Any],
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
            return settings.secondary_min_wait
        return max(0.0, reset - clock().timestamp()) + 1.0
    text = message.lower()
    if response.status_code == 429 or "rate limit" in text or "abuse" in text:
        state["secondary"] = state.get("secondary", 0) + 1
        return float(settings.secondary_min_wait * 2 ** (state["secondary"] - 1))
    return None


class Waits:
    """The retry loop of one client: what it may wait, and the waiting (counted in `stats`)."""

    def __init__(self, settings: GitHubSettings, stats: RequestStats, sleep: Sleep) -> None:
        self.settings = settings
        self.stats = stats
        self._sleep = sleep

    def may_wait(self, seconds: float, state: dict[str, Any]) -> bool:
        """Whether a wait of `seconds` fits: one wait at most `max_rate_limit_wait`, all waits
        of one call at most `max_wait_per_call`, of the whole client (one pass or one command)
        at most `max_wait_per_pass` — all below the agent unit's start timeout."""
        settings = self.settings
        return (
            seconds <= settings.max_rate_limit_wait
            and state["waited"] + seconds <= settings.max_wait_per_call
            and self.stats.waited_seconds + seconds <= settings.max_wait_per_pass
        )

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

    def retrying(
        self, operation: str, attempt: Callable[[], _T], state: dict[str, Any] | None = None
    ) -> _T:
        """`attempt` until it returns, raises a final error, or the attempts or waits run out;
        a `Retry` that is not repeated surfaces as the GitHubError it carries."""
        call = state if state is not None else {"waited": 0.0}

        def out_of_budget(retry_state: tenacity.RetryCallState) -> bool:
            if retry_state.attempt_number >= self.settings.max_attempts:
                return True
            if not self.may_wait(retry_state.upcoming_sleep, call):
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
