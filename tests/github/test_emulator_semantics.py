"""The GitHub emulator behaves like GitHub where the product depends on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulators.clock import EmulatorClock
from tests.emulators.github_api import GitHubEmulator
from tests.github.conftest import PAT, READ_ONLY_PAT, REPO, START

AUTH = {"Authorization": f"Bearer {PAT}"}


@pytest.fixture
def http(emulator: GitHubEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.api_url, headers=AUTH) as client:
        yield client


def runners(http: httpx.Client, **params: Any) -> httpx.Response:
    return http.get(f"/repos/{REPO}/actions/runners", params=params)


def test_default_read_only_labels_and_custom_ones(
    emulator: GitHubEmulator, http: httpx.Client
) -> None:
    runner = emulator.state.add_runner(REPO, "lane-1", labels=["gpu", "self-hosted"])
    labels = http.get(f"/repos/{REPO}/actions/runners/{runner.id}").json()["labels"]
    assert [(x["name"], x["type"]) for x in labels] == [
        ("self-hosted", "read-only"),
        ("Linux", "read-only"),
        ("X64", "read-only"),
        ("gpu", "custom"),
    ]
    added = http.post(f"/repos/{REPO}/actions/runners/{runner.id}/labels", json={"labels": ["arm"]})
    assert [x["name"] for x in added.json()["labels"]][-2:] == ["gpu", "arm"]
    removed = http.delete(f"/repos/{REPO}/actions/runners/{runner.id}/labels/gpu")
    assert [x["name"] for x in removed.json()["labels"]] == ["self-hosted", "Linux", "X64", "arm"]
    assert http.delete(f"/repos/{REPO}/actions/runners/{runner.id}/labels/nope").status_code == 404
    cleared = http.delete(f"/repos/{REPO}/actions/runners/{runner.id}/labels")
    assert cleared.json()["total_count"] == 3
    listed = http.get(f"/repos/{REPO}/actions/runners/{runner.id}/labels")
    assert listed.json()["total_count"] == 3


def test_status_is_separate_from_busy_and_version_starts_null(
    emulator: GitHubEmulator, http: httpx.Client
) -> None:
    runner = emulator.state.add_runner(REPO, "lane-1", busy=True, status="offline")
    body = http.get(f"/repos/{REPO}/actions/runners/{runner.id}").json()
    assert (body["status"], body["busy"], body["version"]) == ("offline", True, None)


def test_deleting_a_busy_runner_is_422(emulator: GitHubEmulator, http: httpx.Client) -> None:
    runner = emulator.state.add_runner(REPO, "lane-1", busy=True, status="online")
    answer = http.delete(f"/repos/{REPO}/actions/runners/{runner.id}")
    assert answer.status_code == 422
    assert set(answer.json()) >= {"message", "documentation_url"}
    with emulator.state.mutate():
        runner.busy = False
    assert http.delete(f"/repos/{REPO}/actions/runners/{runner.id}").status_code == 204
    assert http.get(f"/repos/{REPO}/actions/runners/{runner.id}").status_code == 404


def test_pages_default_to_30_and_stop_at_100(emulator: GitHubEmulator, http: httpx.Client) -> None:
    for i in range(130):
        emulator.state.add_runner(REPO, f"r{i}")
    first = runners(http)
    assert first.json()["total_count"] == 130
    assert len(first.json()["runners"]) == 30
    assert 'rel="next"' in first.headers["link"]
    assert "page=5" in first.headers["link"]
    big = runners(http, per_page=500, page=2)
    assert len(big.json()["runners"]) == 30  # capped at 100 per page: page 2 holds the rest
    assert 'rel="prev"' in big.headers["link"]
    assert 'rel="next"' not in big.headers["link"]
    assert "link" not in runners(http, name="r7").headers


def test_registration_tokens_expire_after_an_hour(
    emulator: GitHubEmulator, http: httpx.Client
) -> None:
    answer = http.post(f"/repos/{REPO}/actions/runners/registration-token")
    assert answer.status_code == 201
    token = answer.json()["token"]
    assert answer.json()["expires_at"].startswith("2025-06-15T16:06:40")  # START + 1 h
    assert emulator.state.token(token, ("registration",)) is not None
    emulator.clock.advance(3600)
    assert emulator.state.token(token, ("registration",)) is None


def test_authentication_and_visibility_like_github(emulator: GitHubEmulator) -> None:
    path = f"/repos/{REPO}/actions/runners"
    with httpx.Client(base_url=emulator.api_url) as bare:
        assert bare.get(path).status_code == 401
        assert bare.get(path).json()["message"] == "Requires authentication"
        bad = bare.get(path, headers={"Authorization": "Bearer ghp_wrong"})
        assert (bad.status_code, bad.json()["message"]) == (401, "Bad credentials")
        read_only = {"Authorization": f"token {READ_ONLY_PAT}"}
        assert bare.get(path, headers=read_only).status_code == 200
        refused = bare.post(f"{path}/registration-token", headers=read_only)
        assert refused.status_code == 403
        unknown = bare.get("/repos/octo-org/secret/actions/runners", headers=AUTH)
        assert unknown.status_code == 404
        version = bare.get(path, headers={**AUTH, "X-GitHub-Api-Version": "1999-01-01"})
        assert version.status_code == 400


def test_online_to_offline_lag(emulator: GitHubEmulator) -> None:
    runner = emulator.state.add_runner(REPO, "lane-1", client_id="c1")
    emulator.state.settings.offline_lag = 30
    session = emulator.state.open_session(runner, "host", "2.329.0")
    assert emulator.state.status(runner) == "online"
    emulator.state.close_session(runner, session.id)
    assert emulator.state.status(runner) == "online"  # GitHub has not noticed yet
    emulator.clock.advance(31)
    assert emulator.state.status(runner) == "offline"


def test_session_timeout_makes_a_silent_runner_offline(emulator: GitHubEmulator) -> None:
    runner = emulator.state.add_runner(REPO, "lane-1", client_id="c1")
    emulator.state.open_session(runner, "host", "2.329.0")
    assert runner.version == "2.329.0"
    emulator.clock.advance(emulator.state.settings.session_timeout + 1)
    assert emulator.state.status(runner) == "offline"


def test_control_routes(emulator: GitHubEmulator) -> None:
    with httpx.Client(base_url=emulator.web_url) as web:
        assert web.get("/_emulator/health").json() == {"ok": True}
        made = web.post(
            f"/_emulator/repos/{REPO}/runners",
            json={"name": "someone-elses", "labels": ["gpu"], "busy": True, "status": "online"},
        ).json()
        assert (made["busy"], made["status"]) == (True, "online")
        web.patch(f"/_emulator/runners/{made['id']}", json={"busy": False, "status": None})
        assert (
            web.post("/_emulator/faults", json={"kind": "status", "status": 503}).status_code == 201
        )
        assert web.get("/_emulator/faults").json()[0]["status"] == 503
        assert web.delete("/_emulator/faults").status_code == 204
        assert web.post("/_emulator/clock", json={"advance": 10}).json()["now"] == START + 10
        web.post("/_emulator/settings", json={"session_timeout": 3})
        assert emulator.state.settings.session_timeout == 3.0
        dump = web.get("/_emulator/state").json()
        assert [r["name"] for r in dump["runners"]] == ["someone-elses"]
        assert dump["runners"][0]["status"] == "offline"
        assert web.delete(f"/_emulator/runners/{made['id']}").status_code == 204
        assert web.post("/_emulator/faults", json={"kind": "nonsense"}).status_code == 400
        log = web.get("/_emulator/requests").json()
        assert all("authorization" not in str(entry).lower() for entry in log)


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    clock = EmulatorClock(START, frozen=True)
    with GitHubEmulator(state_file=state_file, clock=clock, validate=True) as first:
        first.state.add_repository(REPO)
        first.state.add_pat(PAT)
        first.state.add_runner(REPO, "lane-1", labels=["launchplane-managed"])
        first.clock.advance(5)
    assert PAT not in state_file.read_text(encoding="utf-8")
    second = GitHubEmulator(
        state_file=state_file, clock=EmulatorClock(START, frozen=True), validate=True
    )
    with second, httpx.Client(base_url=second.api_url, headers=AUTH) as http:
        body = http.get(f"/repos/{REPO}/actions/runners").json()
    assert [r["name"] for r in body["runners"]] == ["lane-1"]
    assert second.clock.time() == START + 5
    assert first.validation_errors == second.validation_errors == []
