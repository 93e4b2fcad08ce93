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
from pathlib import Path

import pytest

from agent.github import GitHubClient
from tests.emulators.github_api import GitHubEmulator
from tests.emulators.runner import listener
from tests.github.conftest import REPO, RunnerUser
from tests.github.runner_host import (
    LABELS,
    TRAP,
    WAIT,
    RunnerHost,
    emulated,
    files_hold,
    runner_host,
    wait_online,
)


@pytest.fixture
def host(
    runner_dir: Path, runner_user: RunnerUser, emulator: GitHubEmulator
) -> Iterator[RunnerHost]:
    with runner_host(runner_dir, runner_user, emulator) as made:
        yield made


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

    run = host.start(env=TRAP)
    wait_online(emulator)
    runner = client.runners_named(REPO, "lane-1").runners[0]
    assert runner.status == "online"
    assert not runner.busy
    assert runner.label_names == {label.lower() for label in LABELS.split(",")} | {"linux", "x64"}
    assert {label.name: label.type for label in runner.labels}["self-hosted"] == "read-only"
    assert {label.name: label.type for label in runner.labels}["launchplane-managed"] == "custom"
    assert client.get_runner(REPO, runner.id).status == "online"

    run.send_signal(signal.SIGTERM)  # what systemd sends to stop the unit
    assert run.wait(timeout=WAIT) == 143  # the trapped run.sh: 128 + SIGTERM
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


def test_unknown_arguments_are_a_warning_not_an_error(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    token = client.registration_token(REPO).token.get_secret_value()
    done = host.configure(token, "--frobnicate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "Unrecognized command-line input arguments for command configure: '--frobnicate'"
        in done.stderr
    )
    run = host.start("./run.sh", "--startuptype", "service", "--unheard-of", env=TRAP)
    wait_online(emulator)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=WAIT) == 143
    output = run.stdout.read() if run.stdout else ""
    assert "command run: '--unheard-of'" in output
    assert "startuptype" not in output


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
    first = host.start(env=TRAP)
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
    assert first.wait(timeout=WAIT) == 143
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
    # GHES: scheme and host only, the port of --url is dropped (docs/github.md)
    assert listener.registration_url("http://127.0.0.1:8080/o/r") == (
        "http://127.0.0.1/api/v3/actions/runner-registration"
    )
    assert listener.registration_url("https://GHES.example:8443/o/r") == (
        "https://ghes.example/api/v3/actions/runner-registration"
    )
    assert listener.registration_url("http://[::1]:8080/o/r") == (
        "http://[::1]/api/v3/actions/runner-registration"
    )


def test_registration_drops_the_port_of_the_url_on_the_wire(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    """Without a proxy, config.sh --url http://127.0.0.1:<port>/o/r asks 127.0.0.1:80, never
    the emulator on <port>; through http_proxy (how the other tests reach it) it registers."""
    token = client.registration_token(REPO).token.get_secret_value()
    emulator.app.log.clear()
    direct = host.configure(token, name="no-proxy", http_proxy="", no_proxy="*")
    assert direct.returncode == 1, direct.stdout
    assert not (host.root / ".runner").exists()
    assert emulator.requests("actions/runner-registration") == []
    proxied = host.configure(token, name="via-proxy")
    assert proxied.returncode == 0, proxied.stderr
    assert [r["status"] for r in emulator.requests("actions/runner-registration")] == [200]


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
