"""Fixtures for the GitHub side: emulators (in-process, validating), adapters, runner user."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from agent.github import GitHubClient, GitHubSettings, TokenCredential
from agent.github.auth import Credential
from tests.emulators.clock import EmulatorClock
from tests.emulators.github_api import GitHubEmulator
from tests.emulators.github_app import GitHubApp
from tests.emulators.github_state import State
from tests.emulators.openapi import SESSION_COVERAGE, SpecValidator
from tests.emulators.runner.build import build

PAT = "ghp_EmulatorAdminToken0123456789abcdefXYZ"
READ_ONLY_PAT = "ghp_EmulatorReadOnlyToken0123456789abcdef"
REPO = "octo-org/octo-repo"
OTHER_REPO = "octo-org/other-repo"
ORG = "octo-org"  # also an organization: organization-scoped runners
START = 1_750_000_000.0  # 2025-06-15T15:06:40Z: every emulated clock starts here, frozen
RUNNER_USER = "lp-test-runner"
APP_ID = "424242"
INSTALLATION_ID = 4711


@dataclass
class Sleeps:
    """An injected `sleep`: records each wait and moves the emulated clock instead."""

    clock: EmulatorClock
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


def seed(state: State) -> None:
    state.add_repository(REPO)
    state.add_repository(OTHER_REPO)
    state.add_organization(ORG)
    state.add_pat(PAT)
    state.add_pat(READ_ONLY_PAT, permission="read")


@pytest.fixture(scope="session")
def runner_tarball(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The runner emulator's release archive and its sha256, built once per session."""
    return build(tmp_path_factory.mktemp("runner-release"))


@pytest.fixture(scope="session")
def validator() -> SpecValidator:
    return SpecValidator(coverage=SESSION_COVERAGE)


@pytest.fixture
def clock() -> EmulatorClock:
    return EmulatorClock(START, frozen=True)


@pytest.fixture
def sleeps(clock: EmulatorClock) -> Sleeps:
    return Sleeps(clock)


@pytest.fixture
def emulator(
    runner_tarball: tuple[Path, str], validator: SpecValidator, clock: EmulatorClock
) -> Iterator[GitHubEmulator]:
    """A validating GitHub emulator on 127.0.0.1:<ephemeral>; any OpenAPI violation it saw
    fails the test that caused it (unless that test cleared it on purpose)."""
    gh = GitHubEmulator(
        validate=True, runner_tarball=runner_tarball[0], clock=clock, validator=validator
    )
    seed(gh.state)
    with gh:
        yield gh
    assert gh.validation_errors == [], gh.validation_errors


@pytest.fixture
def app(
    runner_tarball: tuple[Path, str], validator: SpecValidator, clock: EmulatorClock
) -> Iterator[GitHubApp]:
    """The same emulator without a socket, for httpx.MockTransport tests."""
    gh = GitHubApp(State(clock), validator=validator, runner_tarball=runner_tarball[0])
    seed(gh.state)
    yield gh
    assert gh.validation_errors == [], gh.validation_errors


MakeClient = Callable[..., GitHubClient]


@contextlib.contextmanager
def _client_factory(
    sleeps: Sleeps, api_url: str, web_url: str, transport: httpx.BaseTransport | None
) -> Iterator[MakeClient]:
    """Adapters against one emulator, on its frozen clock; all closed afterwards."""
    made: list[GitHubClient] = []

    def make(credential: Credential | None = None, **settings: object) -> GitHubClient:
        client = GitHubClient(
            GitHubSettings(api_url=api_url, web_url=web_url, **settings),
            credential or TokenCredential(token=SecretStr(PAT)),
            transport=transport,
            sleep=sleeps,
            clock=sleeps.clock.now,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def make_mock_client(app: GitHubApp, sleeps: Sleeps) -> Iterator[MakeClient]:
    with _client_factory(
        sleeps,
        "https://github.emulator.test/api/v3",
        "https://github.emulator.test",
        app.mock_transport(),
    ) as make:
        yield make


@pytest.fixture
def make_client(emulator: GitHubEmulator, sleeps: Sleeps) -> Iterator[MakeClient]:
    with _client_factory(sleeps, emulator.api_url, emulator.web_url, None) as make:
        yield make


@pytest.fixture
def client(make_client: MakeClient) -> GitHubClient:
    return make_client()


@pytest.fixture(scope="session")
def app_key() -> tuple[str, str]:
    """A GitHub App's RSA key pair (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def write_secret(path: Path, text: str) -> Path:
    """A credential file as the README says to write one: mode 0600 (the agent refuses more)."""
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def write_app_credentials(
    directory: Path, private_pem: str, installation_id: int | None = None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {"app_id": int(APP_ID)}
    if installation_id is not None:
        config["installation_id"] = installation_id
    write_secret(directory / "github-app.json", json.dumps(config))
    write_secret(directory / "github-app-key.pem", private_pem)
    return directory


# --- running the runner emulator as an unprivileged user ---------------------------------------


@dataclass(frozen=True)
class RunnerUser:
    """Who runs config.sh/run.sh: `lp-test-runner` when the suite runs as root (created if
    missing), else the current (non-root) user. `argv` wraps a command to run as that user."""

    uid: int
    gid: int
    switch: bool

    def argv(self, command: list[str]) -> list[str]:
        if not self.switch:
            return command
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            "--",
            *command,
        ]


@pytest.fixture(scope="session")
def runner_user() -> RunnerUser:
    if os.geteuid() != 0:
        return RunnerUser(os.getuid(), os.getgid(), switch=False)
    try:
        entry = pwd.getpwnam(RUNNER_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                RUNNER_USER,
            ],
            check=True,
        )
        entry = pwd.getpwnam(RUNNER_USER)
    return RunnerUser(entry.pw_uid, entry.pw_gid, switch=True)


@pytest.fixture
def runner_dir(runner_tarball: tuple[Path, str], runner_user: RunnerUser) -> Iterator[Path]:
    """The release archive extracted (data filter) into a fresh directory the runner user owns
    (outside pytest's 0700 tmp tree, which that user could not enter)."""
    root = Path(tempfile.mkdtemp(prefix="lp-runner-"))
    with tarfile.open(runner_tarball[0]) as archive:
        archive.extractall(root, filter="data")
    for path in [root, *root.rglob("*")]:
        os.chown(path, runner_user.uid, runner_user.gid, follow_symlinks=False)
    os.chmod(root, 0o755)  # noqa: S103 - a runner directory is world-readable, as installed
    yield root
    shutil.rmtree(root, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = SESSION_COVERAGE.rows()
    if not rows:
        return
    terminalreporter.section("GitHub OpenAPI conformance (validated operationId / status)")
    for operation, status, documented, count in rows:
        note = (
            ""
            if documented
            else "  (304: empty body)"
            if status == 304
            else "  (undocumented here: generic basic-error body)"
        )
        terminalreporter.write_line(f"{operation:70} {status:>4} x{count}{note}")
