"""A runner directory and the user who runs it, for tests of the runner emulator: config.sh,
run.sh and the listener as real processes against the GitHub emulator."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from helper.contract.redact import variants
from tests.emulators.github_api import GitHubEmulator
from tests.emulators.github_state import Runner as EmulatedRunner
from tests.github.conftest import REPO, RunnerUser

LABELS = "self-hosted,launchplane,launchplane-managed,chris-testing,cm-website"
WAIT = 15.0  # generous bound on real process start-up; never a fixed sleep
TRAP = {"RUNNER_MANUALLY_TRAP_SIG": "1"}  # run.sh passes SIGTERM/SIGINT on (as a SIGINT)


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
            "RUNNER_EMULATOR_SESSION_RETRY_SECONDS": "0.05",
            "RUNNER_EMULATOR_SESSION_CONFLICT_SECONDS": "0",
            # The runner drops the port of --url for its registration URL (docs/github.md); the
            # emulator's ephemeral port is reached as the real runner reaches a GHES behind a
            # proxy: through http_proxy (the emulator also answers absolute-form requests).
            "http_proxy": self.emulator.web_url,
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
        self, token: str, *args: str, name: str = "lane-1", **env: str
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
            **env,
        )

    def start(
        self, command: str = "./run.sh", *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            self.user.argv([command, *args]),
            cwd=self.root,
            env=self.env(**(env or {})),
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


@contextlib.contextmanager
def runner_host(
    runner_dir: Path, runner_user: RunnerUser, emulator: GitHubEmulator
) -> Iterator[RunnerHost]:
    """A RunnerHost whose processes are all SIGKILLed (by process group) afterwards."""
    host = RunnerHost(runner_dir, runner_user, emulator)
    try:
        yield host
    finally:
        host.stop_all()


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


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll a condition outside the emulator (a file, a process) up to WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def polls(emulator: GitHubEmulator) -> int:
    return len(emulator.requests("actions/session-poll"))


def wait_for_more_polls(emulator: GitHubEmulator, count: int = 3) -> None:
    """Wait until the listener has polled `count` more times: it is alive and listening."""
    seen = polls(emulator)
    wait_until(lambda: polls(emulator) >= seen + count, f"{count} more polls")
