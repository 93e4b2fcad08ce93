"""What the adapter hands back besides the contracts' runner models: tokens, downloads, stats."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import SecretStr

from helper.contract.models import StrictModel


class RunnerToken(StrictModel):
    """A registration or remove token. The value is a secret: only `evidence()` goes into
    records, and the value itself is registered with the redactor when it arrives."""

    kind: Literal["registration", "remove"]
    repository: str
    token: SecretStr
    expires_at: datetime

    def evidence(self) -> dict[str, str]:
        """What an audit record may carry about the token: never its value."""
        return {
            "kind": self.kind,
            "repository": self.repository,
            "expires_at": self.expires_at.isoformat(),
        }


class RunnerDownload(StrictModel):
    """One runner application GitHub offers (`os`, `architecture`, URL, file, checksum)."""

    os: str
    architecture: str
    download_url: str
    filename: str
    sha256_checksum: str | None = None
    temp_download_token: SecretStr | None = None


@dataclass
class RateLimit:
    """The last `x-ratelimit-*` headers seen."""

    limit: int
    remaining: int
    used: int
    reset: int
    resource: str


@dataclass
class RequestStats:
    """What the adapter spent: for the benchmarks and the audit's provider evidence."""

    requests: int = 0  # HTTP requests sent, retries and token minting included
    not_modified: int = 0  # 304 answers: free of rate limit
    retries: int = 0
    rate_limit_used: int = 0  # sum of x-ratelimit-used increases seen (units spent)
    waited_seconds: float = 0.0  # slept between attempts (backoff and rate-limit waits)
    by_operation: Counter[str] = field(default_factory=Counter)
    rate_limit: RateLimit | None = None

    def observe(self, operation: str, status: int, headers: Any) -> None:
        self.requests += 1
        self.by_operation[operation] += 1
        if status == 304:
            self.not_modified += 1
        try:
            current = RateLimit(
                limit=int(headers["x-ratelimit-limit"]),
                remaining=int(headers["x-ratelimit-remaining"]),
                used=int(headers["x-ratelimit-used"]),
                reset=int(headers["x-ratelimit-reset"]),
                resource=str(headers.get("x-ratelimit-resource", "core")),
            )
        except (KeyError, ValueError, TypeError):
            return
        previous = self.rate_limit
        if previous is not None and (previous.reset, previous.resource) == (
            current.reset,
            current.resource,
        ):
            self.rate_limit_used += max(0, current.used - previous.used)
        elif status != 304:
            self.rate_limit_used += 1  # first sight of this window: this request was charged
        self.rate_limit = current

    def as_evidence(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "not_modified": self.not_modified,
            "retries": self.retries,
            "rate_limit_used": self.rate_limit_used,
            "waited_seconds": round(self.waited_seconds, 3),
            "by_operation": dict(sorted(self.by_operation.items())),
            "rate_limit_remaining": None if self.rate_limit is None else self.rate_limit.remaining,
        }
