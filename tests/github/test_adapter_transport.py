"""The REST adapter through httpx.MockTransport: the emulator's semantics without a socket, plus
hand-written transports where a test must see the exact request."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from agent.github import (
    USED_OPERATIONS,
    EtagCache,
    GitHubAuthError,
    GitHubClient,
    GitHubNotFound,
    GitHubProtocolError,
    GitHubRateLimited,
    GitHubRunnerBusy,
    GitHubSettings,
    GitHubUnavailable,
    GitHubValidationFailed,
    RunnerDownload,
    TokenCredential,
    select_download,
)
from agent.github.client import LIST_RUNNERS
from helper.contract.redact import REDACTOR
from tests.emulators.faults import Fault
from tests.emulators.github_app import GitHubApp
from tests.github.conftest import PAT, READ_ONLY_PAT, REPO, MakeClient, Sleeps

LIST = "actions/list-self-hosted-runners-for-repo"


def add_runners(app: GitHubApp, count: int, repository: str = REPO) -> None:
    for i in range(count):
        labels = ["launchplane-managed"] if i % 3 == 0 else []
        app.state.add_runner(repository, f"runner-{i:03d}", labels=labels)


# --- pagination ----------------------------------------------------------------------------


def test_lists_every_page_past_100_runners(app: GitHubApp, make_mock_client: MakeClient) -> None:
    add_runners(app, 250)
    client = make_mock_client()
    runners = client.list_runners(REPO)
    assert len(runners) == 250
    assert len({r.id for r in runners}) == 250
    pages = app.requests(LIST)
    assert len(pages) == 3  # per_page=100, then Link rel="next" twice
    assert "per_page=100" in pages[0]["query"]
    assert [p["query"].endswith(f"page={n}") for n, p in enumerate(pages[1:], 2)] == [True, True]


def test_runners_named_uses_the_name_filter(app: GitHubApp, make_mock_client: MakeClient) -> None:
    add_runners(app, 120)
    inventory = make_mock_client().runners_named(REPO, "RUNNER-007")
    assert inventory.total_count == 1
    assert inventory.runners[0].name == "runner-007"
    assert inventory.runners[0].label_names >= {"self-hosted", "linux", "x64"}
    assert "name=RUNNER-007" in app.requests(LIST)[0]["query"]


# --- ETag ----------------------------------------------------------------------------------


def test_steady_state_costs_only_304s(app: GitHubApp, make_mock_client: MakeClient) -> None:
    add_runners(app, 150)
    client = make_mock_client()
    first = client.list_runners(REPO)
    spent = client.stats.rate_limit_used
    assert spent == 2
    second = client.list_runners(REPO)
    assert second == first
    assert client.stats.not_modified == 2
    assert client.stats.rate_limit_used == spent  # 304s are free
    changed = app.state.runner(REPO, 120)  # on page 2: only that page costs again
    assert changed is not None
    with app.state.mutate():
        changed.busy = True
    assert [r.busy for r in client.list_runners(REPO) if r.id == 120] == [True]
    assert client.stats.not_modified == 3


def test_etag_cache_on_disk_survives_the_process(
    app: GitHubApp, make_mock_client: MakeClient, tmp_path: Path
) -> None:
    add_runners(app, 10)
    make_mock_client(cache_dir=tmp_path / "cache").list_runners(REPO)
    cache_file = tmp_path / "cache" / "github-etags.json"
    assert cache_file.stat().st_mode & 0o777 == 0o600
    fresh = make_mock_client(cache_dir=tmp_path / "cache")  # a new timer-driven pass
    assert len(fresh.list_runners(REPO)) == 10
    assert fresh.stats.not_modified == 1
    assert fresh.stats.rate_limit_used == 0


def test_damaged_cache_costs_one_cold_pass(tmp_path: Path) -> None:
    (tmp_path / "github-etags.json").write_text("{not json", encoding="utf-8")
    assert EtagCache(tmp_path).get("anything") is None


# --- faults --------------------------------------------------------------------------------


def test_5xx_is_retried_with_backoff(
    app: GitHubApp, make_mock_client: MakeClient, sleeps: Sleeps
) -> None:
    add_runners(app, 3)
    app.faults.add(Fault("status", status=502, count=2))
    assert len(make_mock_client().list_runners(REPO)) == 3
    assert sleeps.waits == [1.0, 2.0]


def test_5xx_that_persists_becomes_unavailable(
    app: GitHubApp, make_mock_client: MakeClient, sleeps: Sleeps
) -> None:
    app.faults.add(Fault("status", status=503, count=None))
    with pytest.raises(GitHubUnavailable) as caught:
        make_mock_client(max_attempts=3).list_runners(REPO)
    assert caught.value.temporary
    assert caught.value.status == 503
    assert sleeps.waits == [1.0, 2.0]


def test_network_error_is_retried(
    app: GitHubApp, make_mock_client: MakeClient, sleeps: Sleeps
) -> None:
    add_runners(app, 1)
    app.faults.add(Fault("disconnect"))
    assert len(make_mock_client().list_runners(REPO)) == 1
    assert sleeps.waits == [1.0]


def test_latency_beyond_the_read_timeout_is_retried(
    app: GitHubApp, make_mock_client: MakeClient, sleeps: Sleeps
) -> None:
    add_runners(app, 1)
    app.faults.add(Fault("latency", seconds=30.0))
    assert len(make_mock_client(read_timeout=5.0).list_runners(REPO)) == 1
    assert sleeps.waits == [1.0]


def test_latency_within_the_timeout_is_just_slow(
    app: GitHubApp, make_mock_client: MakeClient, sleeps: Sleeps
) -> None:
    add_runners(app, 1)
    app.faults.add(Fault("latency", seconds=2.0))
    assert len(make_mock_client(read_timeout=5.0).list_runners(REPO)) == 1
    assert sleeps.waits == []


def test_primary_rate_limit_waits_for_the_reset(
    app: GitHubApp, make_mock_client: MakeClient, sleeps: Sleeps
) -> None:
    add_runners(app, 1)
    app.faults.add(Fault("primary_rate_limit", reset_in=120))
    assert len(make_mock_client().list_runners(REPO)) == 1
    assert sleeps.waits == [121.0]  # x-ratelimit-reset - now, plus a second of margin


def test_primary_rate_limit_too_far_away_is_raised_not_slept(
    app: GitHubApp, make_mock_client: MakeClient, sleeps: Sleeps
) -> None:
    app.faults.add(Fault("primary_rate_limit", reset_in=3000))
    with pytest.raises(GitHubRateLimited) as caught:
        make_mock_client(max_rate_limit_wait=600).list_runners(REPO)
    assert caught.value.temporary
    assert caught.value.delay == 3001.0
    assert sleeps.waits == []


@pytest.mark.parametrize("status", [403, 429])
def test_secondary_rate_limit_honours_retry_after(
    app: GitHubApp, make_mock_client: MakeClient, sleeps: Sleeps, status: int
) -> None:
    app.faults.add(Fault("secondary_rate_limit", status=status, retry_after=7))
    make_mock_client().registration_token(REPO)
    assert sleeps.waits == [7.0]


def test_secondary_rate_limit_without_retry_after_waits_a_minute_and_more(
    app: GitHubApp, make_mock_client: MakeClient, sleeps: Sleeps
) -> None:
    app.faults.add(Fault("secondary_rate_limit", status=403, retry_after=None, count=2))
    make_mock_client().list_runners(REPO)
    assert sleeps.waits == [60.0, 120.0]


# --- GitHub's refusals -----------------------------------------------------------------------


def test_bad_token_is_an_auth_error_and_not_retried(
    make_mock_client: MakeClient, sleeps: Sleeps
) -> None:
    client = make_mock_client(TokenCredential(token=SecretStr("ghp_NotAKnownToken000000000")))
    with pytest.raises(GitHubAuthError) as caught:
        client.list_runners(REPO)
    assert caught.value.status == 401
    assert sleeps.waits == []


def test_permission_403_is_an_auth_error(make_mock_client: MakeClient, sleeps: Sleeps) -> None:
    client = make_mock_client(TokenCredential(token=SecretStr(READ_ONLY_PAT)))
    client.list_runners(REPO)  # reading is allowed
    with pytest.raises(GitHubAuthError) as caught:
        client.registration_token(REPO)
    assert caught.value.status == 403
    assert sleeps.waits == []


def test_unknown_repository_and_runner_are_not_found(make_mock_client: MakeClient) -> None:
    client = make_mock_client()
    with pytest.raises(GitHubNotFound):
        client.list_runners("octo-org/no-such-repo")
    with pytest.raises(GitHubNotFound):
        client.get_runner(REPO, 9999)


def test_deleting_a_gone_runner_is_success(app: GitHubApp, make_mock_client: MakeClient) -> None:
    runner = app.state.add_runner(REPO, "doomed")
    client = make_mock_client()
    assert client.delete_runner(REPO, runner.id) is True
    assert client.delete_runner(REPO, runner.id) is False


def test_deleting_a_busy_runner_is_refused(app: GitHubApp, make_mock_client: MakeClient) -> None:
    runner = app.state.add_runner(REPO, "working", busy=True, status="online")
    with pytest.raises(GitHubRunnerBusy) as caught:
        make_mock_client().delete_runner(REPO, runner.id)
    assert caught.value.status == 422
    assert app.state.runner(REPO, runner.id) is not None


def test_invalid_repository_never_reaches_the_wire(
    app: GitHubApp, make_mock_client: MakeClient
) -> None:
    with pytest.raises(GitHubValidationFailed):
        make_mock_client().list_runners("../../etc/passwd")
    assert app.requests() == []


# --- requests as GitHub wants them ---------------------------------------------------------


def test_every_request_carries_version_accept_and_bearer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"total_count": 0, "runners": []})

    client = GitHubClient(
        GitHubSettings(),
        TokenCredential(token=SecretStr(PAT)),
        transport=httpx.MockTransport(handler),
    )
    client.list_runners(REPO)
    request = seen[0]
    assert str(request.url) == (
        "https://api.github.com/repos/octo-org/octo-repo/actions/runners?per_page=100"
    )
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["authorization"] == f"Bearer {PAT}"
    assert request.headers["user-agent"].startswith("launchplane-runner-maintainer/")


def test_next_link_to_another_host_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"total_count": 2, "runners": []},
            headers={"link": '<https://evil.example/steal?page=2>; rel="next"'},
        )

    client = GitHubClient(
        GitHubSettings(),
        TokenCredential(token=SecretStr(PAT)),
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(GitHubProtocolError, match="leaves the API host"):
        client.list_runners(REPO)


def test_malformed_answer_is_a_protocol_error_without_values() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"total_count": "many", "runners": [{"id": "x"}]})

    client = GitHubClient(
        GitHubSettings(),
        TokenCredential(token=SecretStr(PAT)),
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(GitHubProtocolError) as caught:
        client.list_runners(REPO)
    assert "many" not in str(caught.value)
    assert caught.value.operation == LIST_RUNNERS


# --- tokens, labels, downloads -------------------------------------------------------------


def test_tokens_are_secrets_with_evidence_only(
    app: GitHubApp, make_mock_client: MakeClient
) -> None:
    client = make_mock_client()
    for token in (client.registration_token(REPO), client.remove_token(REPO)):
        value = token.token.get_secret_value()
        assert value not in repr(token)
        assert value not in token.model_dump_json()
        assert value not in json.dumps(token.evidence())
        assert REDACTOR.redact(f"x {value} y") == "x *** y"
        assert token.expires_at.timestamp() == app.state.clock.time() + 3600


def test_set_custom_labels_keeps_read_only_labels(
    app: GitHubApp, make_mock_client: MakeClient
) -> None:
    runner = app.state.add_runner(REPO, "lane-1", labels=["old"])
    labels = make_mock_client().set_custom_labels(
        REPO, runner.id, ["launchplane", "Launchplane-Managed"]
    )
    assert [(label.name, label.type) for label in labels] == [
        ("self-hosted", "read-only"),
        ("Linux", "read-only"),
        ("X64", "read-only"),
        ("launchplane", "custom"),
        ("Launchplane-Managed", "custom"),
    ]
    with pytest.raises(GitHubValidationFailed):
        make_mock_client().set_custom_labels(REPO, runner.id, [f"l{i}" for i in range(101)])


def test_downloads_are_verified_and_cached(
    make_mock_client: MakeClient, runner_tarball: tuple[Path, str], tmp_path: Path
) -> None:
    client = make_mock_client()
    download = select_download(client.runner_downloads(REPO), "linux", "x64")
    assert download.sha256_checksum == runner_tarball[1]
    path = client.download_runner(download, tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == runner_tarball[1]
    before = client.stats.requests
    assert client.download_runner(download, tmp_path) == path  # intact copy: no request
    assert client.stats.requests == before


def test_a_tampered_download_is_discarded(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"not the runner you are looking for")

    client = GitHubClient(
        GitHubSettings(),
        TokenCredential(token=SecretStr(PAT)),
        transport=httpx.MockTransport(handler),
    )
    download = RunnerDownload(
        os="linux",
        architecture="x64",
        download_url="https://github.com/actions/runner/releases/download/v2.329.0/actions-runner-linux-x64-2.329.0.tar.gz",
        filename="actions-runner-linux-x64-2.329.0.tar.gz",
        sha256_checksum="0" * 64,
    )
    with pytest.raises(GitHubProtocolError, match="sha256 mismatch"):
        client.download_runner(download, tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert "authorization" not in seen[0].headers  # the GitHub token never goes to a download
    without = download.model_copy(update={"sha256_checksum": None})
    with pytest.raises(GitHubProtocolError, match="unverified"):
        client.download_runner(without, tmp_path)


def test_used_operations_are_all_in_the_description(app: GitHubApp) -> None:
    assert app.validator is not None
    assert app.validator.operation_ids() >= USED_OPERATIONS


def test_a_temp_download_token_replaces_the_github_token(tmp_path: Path) -> None:
    archive = b"runner bytes"
    seen: list[httpx.Request] = []
    url = "https://objects.example/actions-runner-linux-x64-2.329.0.tar.gz"

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/downloads"):
            item = {
                "os": "linux",
                "architecture": "x64",
                "download_url": url,
                "filename": "actions-runner-linux-x64-2.329.0.tar.gz",
                "sha256_checksum": hashlib.sha256(archive).hexdigest(),
                "temp_download_token": "TEMPDOWNLOADTOKEN42",
            }
            return httpx.Response(200, json=[item])
        return httpx.Response(200, content=archive)

    client = GitHubClient(
        GitHubSettings(),
        TokenCredential(token=SecretStr(PAT)),
        transport=httpx.MockTransport(handler),
    )
    download = select_download(client.runner_downloads(REPO))
    assert "TEMPDOWNLOADTOKEN42" not in repr(download)
    assert REDACTOR.redact("TEMPDOWNLOADTOKEN42") == "***"
    client.download_runner(download, tmp_path)
    assert seen[-1].headers["authorization"] == "Bearer TEMPDOWNLOADTOKEN42"
    assert PAT not in str(seen[-1].headers)
