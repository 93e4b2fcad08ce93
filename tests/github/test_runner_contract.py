"""The runner emulator's contracts against the facts in docs/github.md: run-helper.sh's and
run.sh's exit codes, the session-conflict retry, GitHub's minimum runner version, config.sh's
dependency check, and GitHub's App JWT lifetime rule."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from agent.github import GitHubClient
from tests.emulators.github_api import GitHubEmulator
from tests.emulators.runner import listener
from tests.emulators.runner.build import SOURCES
from tests.github.conftest import APP_ID, INSTALLATION_ID, REPO, RunnerUser
from tests.github.runner_host import TRAP, WAIT, RunnerHost, runner_host, wait_online

# A stand-in Runner.Listener: exits with the codes listed in `codes` (one per launch).
FAKE_LISTENER = """
import pathlib, sys
state = pathlib.Path("launches")
n = int(state.read_text()) if state.exists() else 0
state.write_text(str(n + 1))
codes = pathlib.Path("codes").read_text().split()
code = int(codes[min(n, len(codes) - 1)])
if code in (3, 4):
    pathlib.Path("update.finished").touch()
sys.exit(code)
"""


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    for name in ("run.sh", "run-helper.sh.template", "safe_sleep.sh"):
        shutil.copy2(SOURCES / name, tmp_path / name)
        (tmp_path / name).chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "Runner.Listener").write_text(FAKE_LISTENER, encoding="utf-8")
    return tmp_path


def launch(directory: Path, script: str, codes: str, **env: str) -> tuple[int, int, str]:
    """Run `script` with the fake listener; (exit code, listener launches, output)."""
    (directory / "codes").write_text(codes, encoding="utf-8")
    (directory / "launches").unlink(missing_ok=True)
    done = subprocess.run(
        [f"./{script}"],
        cwd=directory,
        env={
            "PATH": "/usr/bin:/bin",
            "RUNNER_ALLOW_RUNASROOT": "1",
            "RUNNER_EMULATOR_RESTART_DELAY_SECONDS": "0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    return done.returncode, int((directory / "launches").read_text()), done.stdout


DEPRECATED = {"ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE": "1"}


@pytest.mark.parametrize(
    ("code", "env", "helper_exit"),
    [
        ("0", {}, 0),
        ("1", {}, 0),
        ("2", {}, 2),
        ("3", {}, 2),
        ("4", {}, 2),
        ("5", {}, 0),
        ("6", {}, 0),
        ("7", {}, 0),
        ("7", DEPRECATED, 7),
        ("9", {}, 0),
        ("143", {}, 0),
    ],
)
def test_run_helper_exit_codes(
    scripts: Path, code: str, env: dict[str, str], helper_exit: int
) -> None:
    shutil.copy2(scripts / "run-helper.sh.template", scripts / "run-helper.sh")
    status, launches, _ = launch(scripts, "run-helper.sh", code, **env)
    assert (status, launches) == (helper_exit, 1)


@pytest.mark.parametrize("trap", [{}, TRAP])
def test_run_sh_relaunches_on_2_3_4_and_passes_7_only_when_asked(
    scripts: Path, trap: dict[str, str]
) -> None:
    status, launches, output = launch(scripts, "run.sh", "2 3 4 1", **trap)
    assert (status, launches) == (0, 4)
    assert output.count("Restarting runner...") == 3
    assert launch(scripts, "run.sh", "7", **trap)[:2] == (0, 1)
    assert launch(scripts, "run.sh", "2 7", **trap, **DEPRECATED)[:2] == (7, 2)


@pytest.fixture
def host(
    runner_dir: Path, runner_user: RunnerUser, emulator: GitHubEmulator
) -> Iterator[RunnerHost]:
    with runner_host(runner_dir, runner_user, emulator) as made:
        yield made


def token(client: GitHubClient) -> str:
    return client.registration_token(REPO).token.get_secret_value()


def test_a_session_conflict_is_retried_until_the_limit_then_exits_5(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    assert host.configure(token(client)).returncode == 0
    host.start(env=TRAP)
    wait_online(emulator)
    second = host.start(
        *("/usr/bin/python3", "-I", "./bin/Runner.Listener", "run"),
        env={
            "RUNNER_EMULATOR_SESSION_RETRY_SECONDS": "0.05",
            "RUNNER_EMULATOR_SESSION_CONFLICT_SECONDS": "0.2",
        },
    )
    assert second.wait(timeout=WAIT) == listener.SESSION_CONFLICT
    output = second.stdout.read() if second.stdout else ""
    # MessageListener: the n-th conflict stops once n * 30 s >= 240 s (here 0.05 and 0.2)
    assert output.count("A session for this runner already exists.") == 4
    assert "Stop retry on SessionConflictException after retried for 0.2 seconds" in output
    statuses = [r["status"] for r in emulator.requests("actions/session-create")]
    assert statuses == [200, 409, 409, 409, 409]


def test_below_the_minimum_version_the_session_and_registration_are_refused(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    assert host.configure(token(client)).returncode == 0
    emulator.state.settings.minimum_runner_version = "2.330.0"
    run = host.start(env=TRAP)
    assert run.wait(timeout=WAIT) == 0  # the listener's 1 is "no retry" for run-helper.sh
    output = run.stdout.read() if run.stdout else ""
    assert "Failed to create session. Runner version v2.329.0 is deprecated" in output
    assert "terminated error, stop the service" in output

    (host.root / ".runner").unlink()
    refused = host.configure(token(client), "--replace")
    assert refused.returncode == 1
    assert "minimum supported version is v2.330.0" in refused.stderr

    emulator.state.settings.minimum_runner_version = listener.VERSION  # equal is enough
    assert host.configure(token(client), "--replace").returncode == 0


def test_config_sh_checks_ldd_and_libicu_when_asked(host: RunnerHost) -> None:
    tools = host.root / "tools"
    tools.mkdir()
    for name in ("id", "uname", "setpriv", "grep", "dirname", "readlink", "cat", "touch"):
        found = shutil.which(name)
        assert found is not None
        os.symlink(found, tools / name)
    check = {"RUNNER_EMULATOR_CHECK_DEPENDENCIES": "1", "PATH": str(tools)}
    no_ldd = host.config("--unattended", **check)
    assert (no_ldd.returncode, no_ldd.stdout.strip()) == (
        1,
        "Can not find 'ldd'. Please install 'ldd' and try again.",
    )
    os.symlink("/bin/true", tools / "ldd")
    (tools / "ldconfig").write_text("#!/bin/sh\necho 'libc.so.6 -> libc.so.6'\n")
    (tools / "ldconfig").chmod(0o755)
    no_icu = host.config("--unattended", **check)
    assert no_icu.returncode == 1
    assert "Libicu's dependencies is missing" in no_icu.stdout
    (tools / "ldconfig").write_text("#!/bin/sh\necho 'libicuuc.so.72 -> libicuuc.so.72.1'\n")
    with_icu = host.config("--unattended", **check)
    assert "Libicu" not in with_icu.stdout  # past the check: the listener asks for a URL
    assert "Invalid configuration provided for url" in with_icu.stderr


def app_jwt(private_pem: str, iat: float, exp: float) -> str:
    return jwt.encode({"iat": int(iat), "exp": int(exp), "iss": APP_ID}, private_pem, "RS256")


def test_an_app_jwt_must_expire_within_ten_minutes(
    emulator: GitHubEmulator, app_key: tuple[str, str]
) -> None:
    emulator.state.add_app(APP_ID, app_key[1], INSTALLATION_ID, [REPO])
    now = emulator.clock.time()
    assert emulator.app._verify_jwt(app_jwt(app_key[0], now - 60, now + 540)) is not None
    assert emulator.app._verify_jwt(app_jwt(app_key[0], now, now + 600)) is not None
    # exp - iat is 11 minutes minus a second, which the old rule let through
    assert emulator.app._verify_jwt(app_jwt(app_key[0], now, now + 659)) is None
    assert emulator.app._verify_jwt(app_jwt(app_key[0], now - 60, now + 601)) is None
