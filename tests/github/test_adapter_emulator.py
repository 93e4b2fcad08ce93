"""The REST adapter against the GitHub emulator over real loopback sockets."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import httpx
import pytest

from agent.github import GitHubClient, GitHubUnavailable, select_download
from tests.emulators.github_api import GitHubEmulator
from tests.github.conftest import PAT, REPO, MakeClient, Sleeps

LIST = "actions/list-self-hosted-runners-for-repo"


def test_pagination_and_etags_over_the_wire(
    emulator: GitHubEmulator, make_client: MakeClient, tmp_path: Path
) -> None:
    for i in range(205):
        emulator.state.add_runner(REPO, f"lane-{i}", labels=["launchplane-managed"])
    client = make_client(cache_dir=tmp_path)
    assert len(client.list_runners(REPO)) == 205
    assert [r["status"] for r in emulator.requests(LIST)] == [200, 200, 200]
    used = emulator.state.bucket(f"pat:{_digest16(PAT)}").used
    again = make_client(cache_dir=tmp_path)  # the next pass, a new process
    assert len(again.list_runners(REPO)) == 205
    assert [r["status"] for r in emulator.requests(LIST)][3:] == [304, 304, 304]
    assert emulator.state.bucket(f"pat:{_digest16(PAT)}").used == used  # 304s cost nothing


def _digest16(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def test_server_errors_and_dropped_connections_are_retried(
    emulator: GitHubEmulator, client: GitHubClient, sleeps: Sleeps
) -> None:
    emulator.state.add_runner(REPO, "lane-1")
    emulator.fault("status", status=500)
    emulator.fault("disconnect")
    assert [r.name for r in client.list_runners(REPO)] == ["lane-1"]
    assert [r["status"] for r in emulator.requests(LIST)] == [500, 0, 200]
    assert sleeps.waits == [1.0, 2.0]


def test_persistent_outage_is_unavailable(
    emulator: GitHubEmulator, make_client: MakeClient
) -> None:
    emulator.fault("status", status=502, count=None)
    with pytest.raises(GitHubUnavailable):
        make_client(max_attempts=2).registration_token(REPO)


def test_real_latency_past_the_read_timeout_is_retried(
    emulator: GitHubEmulator, make_client: MakeClient, sleeps: Sleeps
) -> None:
    emulator.state.add_runner(REPO, "lane-1")
    emulator.fault("latency", seconds=0.4)
    client = make_client(read_timeout=0.1)
    assert len(client.list_runners(REPO)) == 1
    assert sleeps.waits == [1.0]


def test_primary_rate_limit_resets_on_the_emulated_clock(
    emulator: GitHubEmulator, client: GitHubClient, sleeps: Sleeps
) -> None:
    emulator.fault("primary_rate_limit", reset_in=200)
    client.registration_token(REPO)
    assert sleeps.waits == [201.0]
    statuses = [
        r["status"] for r in emulator.requests("actions/create-registration-token-for-repo")
    ]
    assert statuses == [403, 201]


def test_secondary_rate_limit_over_the_wire(
    emulator: GitHubEmulator, client: GitHubClient, sleeps: Sleeps
) -> None:
    emulator.fault("secondary_rate_limit", status=429, retry_after=11)
    emulator.fault("secondary_rate_limit", status=403, retry_after=None)
    client.list_runners(REPO)
    assert sleeps.waits == [11.0, 60.0]


def test_rate_limit_headers_on_every_answer(emulator: GitHubEmulator) -> None:
    with httpx.Client(base_url=emulator.api_url) as http:
        answer = http.get(
            f"/repos/{REPO}/actions/runners", headers={"Authorization": f"Bearer {PAT}"}
        )
    for name in ("limit", "remaining", "reset", "used", "resource"):
        assert f"x-ratelimit-{name}" in answer.headers
    assert answer.headers["x-ratelimit-used"] == "1"
    assert answer.headers["x-ratelimit-remaining"] == "4999"


def test_download_the_served_runner(
    emulator: GitHubEmulator,
    client: GitHubClient,
    runner_tarball: tuple[Path, str],
    tmp_path: Path,
) -> None:
    download = select_download(client.runner_downloads(REPO))
    assert download.download_url.startswith(emulator.web_url + "/actions/runner/releases/")
    path = client.download_runner(download, tmp_path)
    assert path.name == runner_tarball[0].name
    with tarfile.open(path) as archive:
        assert {"./config.sh", "./run.sh", "./bin/Runner.Listener"} <= set(archive.getnames())
