"""Errors of the agent's GitHub side.

Hierarchy::

    LaunchplaneError (helper.contract.errors)
    └── GitHubError                  a GitHub request failed; `operation` and `status` say which
        ├── GitHubCredentialError    the credential directory is missing, unreadable or ambiguous
        ├── GitHubAuthError          401, or a 403 that is no rate limit: credential wrong or short
        ├── GitHubNotFound           404: repository or runner absent (or hidden from the token)
        ├── GitHubValidationFailed   422: GitHub refused the request as it stands
        │   └── GitHubRunnerBusy     422 on delete: the runner is running a job
        ├── GitHubProtocolError      a response did not look like GitHub's (JSON, fields, checksum)
        ├── GitHubRateLimited        temporary: primary or secondary rate limit; retry after `delay`
        └── GitHubUnavailable        temporary: 5xx or network failure after the retries ran out

`temporary` is true where the same request may succeed later (kopf's TemporaryError with a
`delay`, and for a rate limit `retry_at`, the moment GitHub allows the next request); every
other error needs a change first. Messages never carry a token, a JWT or an
Authorization header: they name the operation, the status and GitHub's own message, and pass
through the process-wide redactor on the way in.
"""

from __future__ import annotations

from datetime import datetime

from helper.contract.errors import LaunchplaneError
from helper.contract.redact import REDACTOR


class GitHubError(LaunchplaneError):
    """A GitHub request failed."""

    code = "github_error"
    temporary = False

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        status: int | None = None,
        delay: float | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        self.operation = operation
        self.status = status
        self.delay = delay
        self.retry_at = retry_at
        prefix = " ".join(
            part
            for part in (operation, f"HTTP {status}" if status is not None else None)
            if part is not None
        )
        text = f"{prefix}: {message}" if prefix else message
        super().__init__(REDACTOR.redact(text))


class GitHubCredentialError(GitHubError):
    """The GitHub credential could not be loaded; says which file and what is wrong."""

    code = "github_credentials_invalid"


class GitHubAuthError(GitHubError):
    """GitHub refused the credential (401) or its permissions (403 that is no rate limit)."""

    code = "github_auth_failed"


class GitHubNotFound(GitHubError):
    """The repository or runner does not exist, or the credential cannot see it."""

    code = "github_not_found"


class GitHubValidationFailed(GitHubError):
    """GitHub answered 422: the request cannot succeed as it stands."""

    code = "github_validation_failed"


class GitHubRunnerBusy(GitHubValidationFailed):
    """The runner is running a job; GitHub refuses to delete it."""

    code = "github_runner_busy"


class GitHubProtocolError(GitHubError):
    """A response did not have the shape GitHub documents (or a download its checksum)."""

    code = "github_protocol_error"


class GitHubRateLimited(GitHubError):
    """A primary or secondary rate limit; `delay` is the number of seconds to wait."""

    code = "github_rate_limited"
    temporary = True


class GitHubUnavailable(GitHubError):
    """GitHub answered 5xx or could not be reached, and the retries ran out."""

    code = "github_unavailable"
    temporary = True
