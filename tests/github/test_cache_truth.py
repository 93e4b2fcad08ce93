"""The ETag cache cannot lie, and waits stay inside their budgets (issue "No false green").

Hand-written transports: each test must see the exact requests (If-None-Match or not)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from agent.github import (
    GitHubAuthError,
    GitHubClient,
    GitHubProtocolError,
    GitHubRateLimited,
    GitHubSettings,
    TokenCredential,
)
from agent.github.cache import CACHE_FILE
from tests.github.conftest import PAT, REPO, Sleeps

API = "https://github.emulator.test/api/v3"
WEB = "https://github.emulator.test"
Handler = Callable[[httpx.Request], httpx.Response]


def runner_page(*names: str) -> dict[str, object]:
    return {
        "total_count": len(names),
        "runners": [
            {
                "id": n,
                "name": name,
                "os": "linux",
                "status": "online",
                "busy": False,
                "labels": [{"id": 1, "name": "self-hosted", "type": "read-only"}],
            }
            for n, name in enumerate(names, 1)
        ],
    }


class Script:
    """A transport that answers from a list and keeps every request it saw."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.answers.pop(0)

    def conditional(self) -> list[bool]:
        return ["if-none-match" in r.headers for r in self.seen]


def ok(body: object, etag: str = '"e1"') -> httpx.Response:
    return httpx.Response(200, json=body, headers={"etag": etag})


@pytest.fixture
def make(sleeps: Sleeps, tmp_path: Path) -> Iterator[Callable[..., GitHubClient]]:
    made: list[GitHubClient] = []

    def build(script: Handler, **settings: object) -> GitHubClient:
        client = GitHubClient(
            GitHubSettings(api_url=API, web_url=WEB, cache_dir=tmp_path / "cache", **settings),
            TokenCredential(token=SecretStr(PAT), source="/etc/launchplane/credentials/x"),
            transport=httpx.MockTransport(script),
            sleep=sleeps,
            clock=sleeps.clock.now,
        )
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


def test_a_body_that_does_not_parse_is_never_cached(make: Callable[..., GitHubClient]) -> None:
    """One malformed answer must not poison later passes: the next request is unconditional
    and its good body is what the adapter returns."""
    script = Script(
        ok({"total_count": 1, "runners": [{"id": 1}]}),  # malformed: fields missing
        ok(runner_page("lane-a"), etag='"e2"'),
        httpx.Response(304),
    )
    client = make(script)
    with pytest.raises(GitHubProtocolError):
        client.runners_named(REPO, "lane-a")
    assert client.runners_named(REPO, "lane-a").runners[0].name == "lane-a"
    assert make(script).runners_named(REPO, "lane-a").runners[0].status == "online"
    assert script.conditional() == [False, False, True]


def test_a_cache_body_changed_on_disk_is_dropped_not_believed(
    make: Callable[..., GitHubClient], tmp_path: Path
) -> None:
    script = Script(ok(runner_page("lane-a")), ok(runner_page("lane-a"), etag='"e2"'))
    make(script).runners_named(REPO, "lane-a")
    path = tmp_path / "cache" / CACHE_FILE
    document = json.loads(path.read_text())
    for entry in document["entries"].values():  # an "online" that GitHub never sent
        entry["body"] = entry["body"].replace("online", "offline")
    path.write_text(json.dumps(document))
    assert make(script).runners_named(REPO, "lane-a").runners[0].status == "online"
    assert script.conditional() == [False, False]  # the lying entry was never offered


def test_a_fresh_read_asks_github_unconditionally(make: Callable[..., GitHubClient]) -> None:
    script = Script(ok(runner_page("lane-a")), ok(runner_page("lane-a"), etag='"e2"'))
    client = make(script)
    client.runners_named(REPO, "lane-a")
    client.runners_named(REPO, "lane-a", fresh=True)
    assert script.conditional() == [False, False]


def retry_after(seconds: int) -> httpx.Response:
    return httpx.Response(429, json={"message": "slow down"}, headers={"retry-after": str(seconds)})


def test_rate_limit_waits_have_a_budget_per_call(
    make: Callable[..., GitHubClient], sleeps: Sleeps
) -> None:
    """Four waits of 200 s each fit the per-wait limit but not the call's budget."""
    script = Script(*(retry_after(200) for _ in range(4)), ok(runner_page()))
    with pytest.raises(GitHubRateLimited) as caught:
        make(script).list_runners(REPO)
    assert sleeps.waits == [200.0]  # the second wait would pass 300 s in one call
    assert caught.value.retry_at is not None
    assert caught.value.retry_at == sleeps.clock.now() + timedelta(seconds=200)


def test_rate_limit_waits_have_a_budget_per_pass(
    make: Callable[..., GitHubClient], sleeps: Sleeps
) -> None:
    script = Script(retry_after(250), ok(runner_page()), retry_after(250), ok(runner_page()))
    client = make(script, max_wait_per_pass=400.0)
    client.list_runners(REPO)
    with pytest.raises(GitHubRateLimited):
        client.runners_named(REPO, "x")
    assert sleeps.waits == [250.0]
    assert client.stats.waited_seconds == 250.0


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "was refused"), (403, "Administration: read and write")],
)
def test_refusals_name_the_credential_and_what_it_needs(
    make: Callable[..., GitHubClient], status: int, words: str
) -> None:
    script = Script(httpx.Response(status, json={"message": "Bad credentials"}))
    with pytest.raises(GitHubAuthError) as caught:
        make(script).list_runners(REPO)
    assert "/etc/launchplane/credentials/x" in str(caught.value)
    assert words in str(caught.value)
