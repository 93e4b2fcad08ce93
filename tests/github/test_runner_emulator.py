"""The runner emulator (config.sh, run.sh, bin/Runner.Listener) against the GitHub emulator, run
as an unprivileged user with the registration token only in the environment."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.github import GitHubClient
from helper.contract.redact import variants
from tests.emulators.github_api import GitHubEmulator
from tests.emulators.github_state import Runner as EmulatedRunner
from tests.emulators.runner import listener
from tests.github.conftest import REPO, RunnerUser

LABELS = "self-hosted,launchplane,launchplane-managed,chris-testing,cm-website"
WAIT = 15.0  # generous bound on real process start-up; never a fixed sleep


@dataclass
class RunnerHost:
    """One runner directory and the user who runs it."""

    root: Path
    user: RunnerUser
    emulator: GitHubEmulator
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.root),
            "RUNNER_EMULATOR_HEARTBEAT_SECONDS": "0.05",
            "RUNNER_EMULATOR_RETRY_SECONDS": "0.05",
            "RUNNER_EMULATOR_RESTART_DELAY_SECONDS": "0",
            "RUNNER_EMULATOR_SESSION_CONFLICT_SECONDS": "0",
            **extra,
        }

    def config(
        self, *args: str, token: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        extra = dict(env)
        if token is not None:
            extra["ACTIONS_RUNNER_INPUT_TOKEN"] = token
        return subprocess.run(
            self.user.argv(["./config.sh", *args]),
            cwd=self.root,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=WAIT,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def configure(
        self, token: str, *args: str, name: str = "lane-1"
    ) -> subprocess.CompletedProcess[str]:
        return self.config(
            "--unattended",
            "--url",
            f"{self.emulator.web_url}/{REPO}",
            "--name",
            name,
            "--labels",
            LABELS,
            "--work",
            "_work",
            "--disableupdate",
            *args,
            token=token,
        )

    def start(self, command: str = "./run.sh", *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            self.user.argv([command, *args]),
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=WAIT)
            if process.stdout is not None:
                process.stdout.close()


@pytest.fixture
def host(
    runner_dir: Path, runner_user: RunnerUser, emulator: GitHubEmulator
) -> Iterator[RunnerHost]:
    runner_host = RunnerHost(runner_dir, runner_user, emulator)
    yield runner_host
    runner_host.stop_all()


def emulated(emulator: GitHubEmulator, name: str = "lane-1") -> EmulatedRunner | None:
    return next((r for r in emulator.state.runners_of(REPO) if r.name == name), None)


def wait_online(emulator: GitHubEmulator, name: str = "lane-1") -> None:
    def online() -> bool:
        runner = emulated(emulator, name)
        return runner is not None and runner.session is not None

    assert emulator.state.wait_for(online, WAIT), f"{name} never opened a session"


def files_hold(root: Path, secret: str) -> list[str]:
    forms = [form.encode() for form in variants(secret)]
    return [
        str(path)
        for path in root.rglob("*")
        if path.is_file() and any(form in path.read_bytes() for form in forms)
    ]


def test_online_while_run_sh_lives_offline_after_it_is_killed(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    token = client.registration_token(REPO).token.get_secret_value()
    done = host.configure(token)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Settings Saved." in done.stdout
    assert files_hold(host.root, token) == []
    assert token not in done.stdout + done.stderr

    raw = (host.root / ".runner").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte order mark, like the real runner
    settings = json.loads(raw.decode("utf-8-sig"))
    assert list(settings) == [
        "agentId",
        "agentName",
        "poolId",
        "poolName",
        "disableUpdate",
        "serverUrl",
        "gitHubUrl",
        "workFolder",
    ]
    assert settings["gitHubUrl"] == f"{emulator.web_url}/{REPO}"
    assert json.loads((host.root / ".credentials").read_text("utf-8-sig"))["scheme"] == "OAuth"
    rsa = host.root / ".credentials_rsaparams"
    assert rsa.stat().st_mode & 0o777 == 0o600
    assert rsa.stat().st_uid == host.user.uid

    inventory = client.runners_named(REPO, "lane-1")
    assert inventory.total_count == 1
    assert inventory.runners[0].status == "offline"  # registered, not yet running

    run = host.start()
    wait_online(emulator)
    runner = client.runners_named(REPO, "lane-1").runners[0]
    assert runner.status == "online"
    assert not runner.busy
    assert runner.label_names == {label.lower() for label in LABELS.split(",")} | {"linux", "x64"}
    assert {label.name: label.type for label in runner.labels}["self-hosted"] == "read-only"
    assert {label.name: label.type for label in runner.labels}["launchplane-managed"] == "custom"
    assert client.get_runner(REPO, runner.id).status == "online"

    run.send_signal(signal.SIGTERM)  # what systemd sends to stop the unit
    assert run.wait(timeout=WAIT) == 0
    assert client.runners_named(REPO, "lane-1").runners[0].status == "offline"

    run = host.start()
    wait_online(emulator)
    assert client.runners_named(REPO, "lane-1").runners[0].status == "online"
    os.killpg(run.pid, signal.SIGKILL)  # no goodbye: the session just stops
    run.wait(timeout=WAIT)
    assert client.runners_named(REPO, "lane-1").runners[0].status == "online"
    emulator.clock.advance(emulator.state.settings.session_timeout + 1)
    assert client.runners_named(REPO, "lane-1").runners[0].status == "offline"

    remove_token = client.remove_token(REPO).token.get_secret_value()
    removed = host.config("remove", token=remove_token)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "Runner removed successfully" in removed.stdout
    assert client.runners_named(REPO, "lane-1").total_count == 0
    assert not (host.root / ".runner").exists()
    assert not (host.root / ".credentials").exists()
    assert not rsa.exists()


def test_refuses_an_already_configured_directory(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    assert host.configure(client.registration_token(REPO).token.get_secret_value()).returncode == 0
    before = (host.root / ".runner").read_bytes()
    again = host.configure(client.registration_token(REPO).token.get_secret_value(), "--replace")
    assert again.returncode == 1
    assert "already configured" in again.stderr
    assert (host.root / ".runner").read_bytes() == before
    assert len(emulator.state.runners_of(REPO)) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to try running as root")
def test_refuses_to_run_as_root(runner_dir: Path, emulator: GitHubEmulator) -> None:
    as_root = RunnerHost(runner_dir, RunnerUser(0, 0, switch=False), emulator)
    refused = as_root.config("--unattended", "--url", f"{emulator.web_url}/{REPO}", token="x" * 29)
    assert refused.returncode == 1
    assert "Must not run with sudo" in refused.stdout
    run = subprocess.run(
        ["./run.sh"],
        cwd=runner_dir,
        env=as_root.env(),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert "Must not run interactively with sudo" in run.stdout
    assert emulator.state.runners_of(REPO) == []


def test_every_input_can_come_from_the_environment(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    done = host.config(
        ACTIONS_RUNNER_INPUT_URL=f"{emulator.web_url}/{REPO}",
        Actions_Runner_Input_Name="from-env",  # the prefix is matched without case
        ACTIONS_RUNNER_INPUT_LABELS="launchplane-managed, gpu ,,",
        ACTIONS_RUNNER_INPUT_UNATTENDED="true",
        ACTIONS_RUNNER_INPUT_EPHEMERAL="True",
        ACTIONS_RUNNER_INPUT_TOKEN=client.registration_token(REPO).token.get_secret_value(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runner = emulated(emulator, "from-env")
    assert runner is not None
    assert runner.ephemeral
    assert [label.name for label in runner.labels] == [
        "self-hosted",
        "Linux",
        "X64",
        "launchplane-managed",
        "gpu",
    ]
    assert json.loads((host.root / ".runner").read_text("utf-8-sig"))["ephemeral"] is True


def test_no_default_labels(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    token = client.registration_token(REPO).token.get_secret_value()
    url = f"{emulator.web_url}/{REPO}"
    refused = host.config("--unattended", "--url", url, "--no-default-labels", token=token)
    assert refused.returncode == 1
    assert "--labels is required" in refused.stderr
    done = host.config(
        "--unattended",
        "--url",
        url,
        "--no-default-labels",
        "--labels",
        "only-mine",
        "--name",
        "bare",
        token=token,
    )
    assert done.returncode == 0, done.stderr
    runner = emulated(emulator, "bare")
    assert runner is not None
    assert [(label.name, label.type) for label in runner.labels] == [("only-mine", "custom")]


def test_replace_takes_over_the_name_and_stops_the_old_registration(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient, tmp_path: Path
) -> None:
    assert host.configure(client.registration_token(REPO).token.get_secret_value()).returncode == 0
    old = host.start()
    wait_online(emulator)
    first_id = client.runners_named(REPO, "lane-1").runners[0].id

    other_root = Path(str(host.root) + "-b")
    shutil.copytree(host.root, other_root, symlinks=True)
    for name in (".runner", ".credentials", ".credentials_rsaparams"):
        (other_root / name).unlink()
    for path in [other_root, *other_root.rglob("*")]:
        os.chown(path, host.user.uid, host.user.gid, follow_symlinks=False)
    other = RunnerHost(other_root, host.user, emulator)
    try:
        token = client.registration_token(REPO).token.get_secret_value()
        clash = other.configure(token)
        assert clash.returncode == 1
        assert "A runner exists with the same name lane-1." in clash.stderr
        replaced = other.configure(token, "--replace")
        assert replaced.returncode == 0, replaced.stderr
        assert "Successfully replaced the runner" in replaced.stdout
        assert client.runners_named(REPO, "lane-1").runners[0].id == first_id
        assert old.wait(timeout=WAIT) == 0  # the old registration's credential stopped working
        assert "no longer exists" in (old.stdout.read() if old.stdout else "")
    finally:
        other.stop_all()
        shutil.rmtree(other_root, ignore_errors=True)


def test_expired_or_wrong_token_is_refused(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    token = client.registration_token(REPO).token.get_secret_value()
    emulator.clock.advance(3601)
    expired = host.configure(token)
    assert expired.returncode == 1
    assert "Http response code: 404" in expired.stderr
    assert not (host.root / ".runner").exists()
    assert not (host.root / ".credentials_rsaparams").exists()
    assert emulator.state.runners_of(REPO) == []


def test_unknown_arguments_are_refused(host: RunnerHost) -> None:
    refused = host.config("--unattended", "--frobnicate")
    assert refused.returncode == 1
    assert "Unrecognized command-line input arguments: '--frobnicate'" in refused.stderr


def test_run_sh_exits_when_the_runner_is_deleted_on_the_server(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    assert host.configure(client.registration_token(REPO).token.get_secret_value()).returncode == 0
    run = host.start()
    wait_online(emulator)
    runner = emulated(emulator)
    assert runner is not None
    assert client.delete_runner(REPO, runner.id) is True
    assert run.wait(timeout=WAIT) == 0  # run-helper maps the listener's 1 (terminated) to a stop
    output = run.stdout.read() if run.stdout else ""
    assert "The runner no longer exists on the server" in output
    assert "terminated error, stop the service" in output


def test_listener_exit_codes(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    listener_cmd = ["/usr/bin/python3", "-I", "./bin/Runner.Listener"]
    version = subprocess.run(
        host.user.argv([*listener_cmd, "--version"]),
        cwd=host.root,
        env=host.env(),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert (version.returncode, version.stdout.strip()) == (0, listener.VERSION)
    not_configured = host.start("/usr/bin/python3", "-I", "./bin/Runner.Listener", "run")
    assert not_configured.wait(timeout=WAIT) == listener.TERMINATED

    assert host.configure(client.registration_token(REPO).token.get_secret_value()).returncode == 0
    first = host.start()
    wait_online(emulator)
    second = host.start("/usr/bin/python3", "-I", "./bin/Runner.Listener", "run")
    assert second.wait(timeout=WAIT) == listener.SESSION_CONFLICT
    assert "A session for this runner already exists." in (
        second.stdout.read() if second.stdout else ""
    )

    runner = emulated(emulator)
    assert runner is not None
    assert runner.session is not None
    old_session = runner.session.id
    with emulator.state.mutate():
        runner.pending_message = "restart"  # the service asks for a relaunch: exit code 2

    def relaunched() -> bool:
        return runner.session is not None and runner.session.id != old_session

    assert emulator.state.wait_for(relaunched, WAIT)
    assert first.poll() is None  # run.sh relaunched the listener instead of exiting
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=WAIT) == 0
    output = first.stdout.read() if first.stdout else ""
    assert "retryable error, re-launch runner" in output
    assert "Restarting runner..." in output


def test_environment_inputs_are_read_masked_and_removed() -> None:
    environ = {
        "ACTIONS_RUNNER_INPUT_TOKEN": "  SECRETTOKEN123  ",
        "actions_runner_input_replace": "TRUE",
        "ACTIONS_RUNNER_INPUT_NAME": "",
        "OTHER": "kept",
    }
    command = listener.parse(
        ["configure", "--url", "https://github.com/o/r", "--unattended"], environ
    )
    assert environ == {"OTHER": "kept"}
    assert command.commands == ["configure"]
    assert command.arg("token") == "SECRETTOKEN123"
    assert command.arg("name") is None
    assert command.flag("replace")
    assert command.flag("unattended")
    assert command.mask("token SECRETTOKEN123 here") == "token *** here"
    assert listener.registration_url("https://github.com/o/r") == (
        "https://api.github.com/actions/runner-registration"
    )
    assert listener.registration_url("http://127.0.0.1:8080/o/r") == (
        "http://127.0.0.1:8080/api/v3/actions/runner-registration"
    )


def test_the_listener_needs_only_the_standard_library() -> None:
    tree = ast.parse(Path(listener.__file__).read_text(encoding="utf-8"))
    imported = {
        (node.module or "").split(".")[0]
        if isinstance(node, ast.ImportFrom)
        else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
