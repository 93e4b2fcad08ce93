"""The agent's only conversation with GitHub: the repository and organization runner endpoints."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Unpack
from urllib.parse import urlsplit

import httpx
import structlog
from pydantic import SecretStr

from agent.contracts import GithubInventory, GithubLabel, GithubRunner
from agent.github import _download, payloads
from agent.github._tokens import GET_INSTALLATION, INSTALLATION_TOKEN, Authorizer, secret_and_expiry
from agent.github._transport import Answer, Clock, SendOptions, Sleep, Transport, utcnow
from agent.github.auth import Credential
from agent.github.cache import EtagCache
from agent.github.errors import (
    GitHubNotFound,
    GitHubProtocolError,
    GitHubRunnerBusy,
    GitHubValidationFailed,
)
from agent.github.models import RequestStats, RunnerDownload, RunnerToken
from agent.github.payloads import inventory_named
from agent.github.scopes import LIST_GROUPS, OPERATIONS, operation, org_path, scope_path
from agent.github.settings import GitHubSettings

log = structlog.get_logger("agent.github")

LIST_RUNNERS = "actions/list-self-hosted-runners-for-repo"
GET_RUNNER = "actions/get-self-hosted-runner-for-repo"
DELETE_RUNNER = "actions/delete-self-hosted-runner-from-repo"
REGISTRATION_TOKEN = "actions/create-registration-token-for-repo"  # noqa: S105 - an operationId
REMOVE_TOKEN = "actions/create-remove-token-for-repo"  # noqa: S105 - an operationId
RUNNER_DOWNLOADS = "actions/list-runner-applications-for-repo"
SET_CUSTOM_LABELS = "actions/set-custom-labels-for-self-hosted-runner-for-repo"

USED_OPERATIONS = frozenset(
    {
        *(op for calls in OPERATIONS.values() for op in calls.values()),
        LIST_GROUPS,
        GET_INSTALLATION,
        INSTALLATION_TOKEN,
    }
)
"""Every operationId of GitHub's OpenAPI description that this adapter calls."""

MAX_LABELS = 100
LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="([^"]+)"')


def _split_link(header: str | None) -> dict[str, str]:
    return {rel: url for url, rel in LINK_RE.findall(header or "")}


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
        self._http = httpx.Client(
            base_url=settings.api_url + "/",
            transport=transport,
            proxy=settings.proxy if transport is None else None,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": settings.api_version,
                "User-Agent": settings.user_agent,
            },
            follow_redirects=False,
        )
        self._transport = Transport(
            settings,
            self.stats,
            self._http,
            etag_cache if etag_cache is not None else EtagCache(settings.cache_dir),
            sleep=sleep,
            clock=clock,
            credential_source=credential.source,
        )
        self._auth = Authorizer(credential, self._transport, clock)

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

    # `repository` below is a runner scope: `owner/name`, or an organization's login (no '/').

    def list_runners(self, repository: str) -> list[GithubRunner]:
        """Every runner of the repository or organization, all pages (`per_page`, following
        `Link: rel=next`)."""
        return list(self._runners(repository, {}))

    def runners_named(self, repository: str, name: str, *, fresh: bool = False) -> GithubInventory:
        """The runners named `name` (GitHub's `name` filter, checked again here). `fresh` asks
        GitHub unconditionally (no `If-None-Match`): what a verification after a change reads,
        so that no cached body can stand in for GitHub's current answer."""
        runners = self._runners(repository, {"name": name}, fresh=fresh)
        return inventory_named(list(runners), name)

    def get_runner(self, repository: str, runner_id: int) -> GithubRunner:
        """One runner; GitHubNotFound if it does not exist."""
        op = operation(repository, "get")
        answer = self._send(
            op,
            "GET",
            f"{scope_path(repository)}/actions/runners/{int(runner_id)}",
            repository=repository,
            conditional=True,
            schema=payloads.ApiRunner,
        )
        return payloads.runner(payloads.parse(payloads.ApiRunner, answer.content, op), op)

    def delete_runner(self, repository: str, runner_id: int) -> bool:
        """Delete a runner registration. True if deleted, False if it was already gone (a
        success: the desired end state holds). GitHubRunnerBusy if it is running a job."""
        op = operation(repository, "delete")
        try:
            self._send(
                op,
                "DELETE",
                f"{scope_path(repository)}/actions/runners/{int(runner_id)}",
                repository=repository,
            )
        except GitHubNotFound:
            log.info("github.runner_already_gone", repository=repository, runner_id=runner_id)
            return False
        except GitHubValidationFailed as exc:
            raise GitHubRunnerBusy(
                f"runner {runner_id} is busy (GitHub refused the delete)",
                operation=op,
                status=exc.status,
            ) from None
        return True

    def registration_token(self, repository: str) -> RunnerToken:
        """A fresh registration token (valid one hour), registered with the redactor."""
        return self._token(repository, "registration", "registration-token")

    def remove_token(self, repository: str) -> RunnerToken:
        """A fresh remove token (valid one hour), registered with the redactor."""
        return self._token(repository, "remove", "remove-token")

    def runner_downloads(self, repository: str) -> list[RunnerDownload]:
        """The runner applications GitHub offers this repository, with their sha256."""
        op = operation(repository, "downloads")
        answer = self._send(
            op, "GET", f"{scope_path(repository)}/actions/runners/downloads", repository=repository
        )  # not conditional: an answer may carry a temp_download_token, so it is never cached
        return payloads.downloads(answer.content, op)

    def set_custom_labels(
        self, repository: str, runner_id: int, labels: Sequence[str]
    ) -> tuple[GithubLabel, ...]:
        """Replace the runner's custom labels; returns every label it now has."""
        names = list(labels)
        op = operation(repository, "labels")
        if len(names) > MAX_LABELS or not all(isinstance(n, str) and n for n in names):
            raise GitHubValidationFailed(
                f"labels must be at most {MAX_LABELS} non-empty strings", operation=op
            )
        answer = self._send(
            op,
            "PUT",
            f"{scope_path(repository)}/actions/runners/{int(runner_id)}/labels",
            repository=repository,
            body={"labels": names},
        )
        parsed = payloads.parse(payloads.ApiLabels, answer.content, op)
        return tuple(payloads.label(item) for item in parsed.labels)

    def runner_group_id(self, organization: str, name: str) -> int | None:
        """The id of the organization's runner group called `name` (compared without case, as
        config.sh does), or None when it has none; every page is read until it is found."""
        for page in range(1, 1001):
            answer = self._send(
                LIST_GROUPS,
                "GET",
                f"{org_path(organization)}/actions/runner-groups",
                repository=organization,
                params={"per_page": 100, "page": page},
                conditional=True,
                schema=payloads.ApiRunnerGroupPage,
            )
            parsed = payloads.parse(payloads.ApiRunnerGroupPage, answer.content, LIST_GROUPS)
            for group in parsed.runner_groups:
                if group.name.lower() == name.lower():
                    return group.id
            if not parsed.runner_groups or page * 100 >= parsed.total_count:
                return None
        raise GitHubProtocolError("too many pages", operation=LIST_GROUPS)

    def download_runner(self, download: RunnerDownload, directory: Path) -> Path:
        """The runner archive in `directory`, verified against its sha256: reused if already
        there and intact, else downloaded (no GitHub credential is sent with it), checked,
        and moved into place atomically. A missing checksum is refused, never trusted."""
        return _download.download_runner(self._transport, download, directory)

    # --- internals: runners -------------------------------------------------------------------

    def _runners(
        self, repository: str, filters: Mapping[str, str], *, fresh: bool = False
    ) -> Iterator[GithubRunner]:
        seen: set[int] = set()
        params: dict[str, str | int] | None = {**filters, "per_page": self.settings.per_page}
        url = f"{scope_path(repository)}/actions/runners"
        op = operation(repository, "list")
        for _page in range(10_000):
            answer = self._send(
                op,
                "GET",
                url,
                repository=repository,
                params=params,
                conditional=True,
                fresh=fresh,
                schema=payloads.ApiRunnerPage,
            )
            page = payloads.parse(payloads.ApiRunnerPage, answer.content, op)
            for api in page.runners:
                if api.id not in seen:
                    seen.add(api.id)
                    yield payloads.runner(api, op)
            following = _split_link(answer.link).get("next")
            if not following:
                return
            if urlsplit(following)[:2] != urlsplit(self.settings.api_url)[:2]:
                raise GitHubProtocolError("Link rel=next leaves the API host", operation=op)
            url, params = following, None
        raise GitHubProtocolError("too many pages", operation=op)

    def _token(
        self,
        repository: str,
        kind: Literal["registration", "remove"],
        endpoint: str,
    ) -> RunnerToken:
        op = operation(repository, kind)
        answer = self._send(
            op,
            "POST",
            f"{scope_path(repository)}/actions/runners/{endpoint}",
            repository=repository,
        )
        token, expires_at = secret_and_expiry(answer.content, op)
        log.info(
            "github.token_issued",
            kind=kind,
            repository=repository,
            expires_at=expires_at.isoformat(),
        )
        return RunnerToken(
            kind=kind, repository=repository, token=SecretStr(token), expires_at=expires_at
        )

    def _send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        repository: str,
        **options: Unpack[SendOptions],
    ) -> Answer:
        """One request for `repository` with its credential; a refused App installation token
        is renewed once (see `Transport.send` for `conditional` and `fresh`)."""
        return self._transport.send(
            operation,
            method,
            url,
            authorization=self._auth.authorization(repository),
            reauthenticate=lambda: self._auth.forget(repository),
            **options,
        )
