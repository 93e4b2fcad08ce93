"""A canary token and every secret minted along the way appear nowhere: not in logs, exceptions,
records, dumps, files or CLI output, in any of their encodings (helper.contract.redact.variants)."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import structlog
from pydantic import SecretStr

from agent.github import (
    AppCredential,
    GitHubClient,
    GitHubError,
    GitHubSettings,
    TokenCredential,
    load_credential,
)
from helper.contract.redact import variants
from tests.emulators.github_api import GitHubEmulator
from tests.github.conftest import (
    APP_ID,
    INSTALLATION_ID,
    REPO,
    RunnerUser,
    Sleeps,
    write_app_credentials,
)
from tests.github.runner_host import LABELS, TRAP, RunnerHost, wait_online

CANARY = "ghs_CANARY0123456789abcdefghijklmnopqrstuv"


def _errors(client: GitHubClient, emulator: GitHubEmulator) -> list[str]:
    """Drive every error path the adapter has and keep what an operator would see."""
    seen: list[str] = []
    busy = emulator.state.add_runner(REPO, "busy-one", busy=True, status="online")
    emulator.fault(
        "status", status=503, count=None, operation="actions/list-runner-applications-for-repo"
    )
    emulator.fault(
        "primary_rate_limit", reset_in=1000, operation="actions/create-remove-token-for-repo"
    )
    calls: list[Callable[[], object]] = [
        lambda: client.get_runner(REPO, 999_999),
        lambda: client.delete_runner(REPO, busy.id),
        lambda: client.runner_downloads(REPO),
        lambda: client.remove_token(REPO),
        lambda: client.list_runners("octo-org/invisible"),
    ]
    for call in calls:
        try:
            call()
        except GitHubError as exc:
            seen += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    emulator.app.faults.clear()
    emulator.clock.advance(1001)  # past the exhausted rate-limit window
    with emulator.state.mutate():
        busy.busy = False
    return seen


def _runner_flows(host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient) -> list[str]:
    """config.sh (token only in the environment), run.sh until online, stop, config.sh remove."""
    out: list[str] = []
    try:
        reg = client.registration_token(REPO).token.get_secret_value()
        configured = host.config(
            "--unattended",
            "--url",
            f"{emulator.web_url}/{REPO}",
            "--name",
            "canary-lane",
            "--labels",
            LABELS,
            token=reg,
        )
        assert configured.returncode == 0, configured.stderr
        out += [configured.stdout, configured.stderr]
        run = host.start(env=TRAP)
        wait_online(emulator, "canary-lane")
        run.terminate()
        assert run.wait(timeout=15) == 143  # run.sh with RUNNER_MANUALLY_TRAP_SIG
        out.append(run.stdout.read() if run.stdout else "")
        gone = host.config("remove", token=client.remove_token(REPO).token.get_secret_value())
        out += [gone.stdout, gone.stderr]
    finally:
        host.stop_all()
    return out


def _adapter_flows(clients: list[GitHubClient], emulator: GitHubEmulator) -> list[str]:
    out: list[str] = []
    for client in clients:
        token = client.registration_token(REPO)
        remove = client.remove_token(REPO)
        out += [repr(token), token.model_dump_json(), json.dumps(token.evidence()), repr(remove)]
        out += [repr(client.list_runners(REPO)), repr(client.runner_downloads(REPO))]
        out.append(json.dumps(client.stats.as_evidence()))
    out += _errors(clients[0], emulator)
    return out


@pytest.fixture
def jwts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every App JWT the adapter signs during the test."""
    seen: list[str] = []
    original = AppCredential.jwt

    def recording(self: AppCredential, now: datetime) -> SecretStr:
        value = original(self, now)
        seen.append(value.get_secret_value())
        return value

    monkeypatch.setattr(AppCredential, "jwt", recording)
    return seen


def test_no_secret_leaks_anywhere(
    emulator: GitHubEmulator,
    sleeps: Sleeps,
    tmp_path: Path,
    jwts: list[str],
    request: pytest.FixtureRequest,
) -> None:
    runner_dir: Path = request.getfixturevalue("runner_dir")
    runner_user: RunnerUser = request.getfixturevalue("runner_user")
    app_key: tuple[str, str] = request.getfixturevalue("app_key")
    caplog: pytest.LogCaptureFixture = request.getfixturevalue("caplog")
    capsys: pytest.CaptureFixture[str] = request.getfixturevalue("capsys")
    caplog.set_level(logging.DEBUG)
    emulator.state.settings.token_prefix = "CANARY"
    emulator.state.add_pat(CANARY)
    emulator.state.add_app(APP_ID, app_key[1], INSTALLATION_ID, [REPO])
    cache = tmp_path / "cache"
    settings = GitHubSettings(api_url=emulator.api_url, web_url=emulator.web_url, cache_dir=cache)
    credentials = [
        TokenCredential(token=SecretStr(CANARY)),
        load_credential(write_app_credentials(tmp_path / "creds", app_key[0])),
    ]
    clients = [
        GitHubClient(settings, credential, sleep=sleeps, clock=sleeps.clock.now)
        for credential in credentials
    ]
    with structlog.testing.capture_logs() as events:
        haystack = _adapter_flows(clients, emulator)
        haystack += _runner_flows(
            RunnerHost(runner_dir, runner_user, emulator), emulator, clients[0]
        )
    for client in clients:
        client.close()

    with httpx.Client(base_url=emulator.web_url) as web:
        haystack += [web.get("/_emulator/state").text, web.get("/_emulator/requests").text]
    haystack.append(json.dumps(emulator.state.dump()))
    haystack += [json.dumps(event, default=str) for event in events]
    haystack += [record.getMessage() for record in caplog.records]
    captured = capsys.readouterr()
    haystack += [captured.out, captured.err]
    for path in [*cache.rglob("*"), *runner_dir.rglob("*")]:
        if path.is_file() and path.name != ".credentials_rsaparams":
            haystack.append(path.read_bytes().decode("utf-8", "replace"))

    secrets = {CANARY, *emulator.state.issued_values(), *jwts}
    secrets |= {line for line in app_key[0].splitlines() if not line.startswith("-----")}
    assert len(emulator.state.issued_values()) >= 8  # tokens really were minted and used
    assert jwts
    assert events
    text = "\n".join(haystack)
    assert CANARY not in text
    leaks = sorted({form[:12] for secret in secrets for form in variants(secret) if form in text})
    assert leaks == []
