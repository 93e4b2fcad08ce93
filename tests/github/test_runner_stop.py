"""How the runner emulator stops, against the facts in docs/github.md (actions/runner's run.sh,
run-helper.sh.template and Runner.Listener): a signal to run.sh alone does nothing useful unless
RUNNER_MANUALLY_TRAP_SIG is set; then the listener cancels its running job and deletes its
session. The listener itself does the same on SIGINT (exit 0) and SIGTERM (exit 143)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.github import GitHubClient
from tests.emulators.github_api import GitHubEmulator
from tests.emulators.github_state import Job
from tests.emulators.github_state import Runner as EmulatedRunner
from tests.github.conftest import REPO, RunnerUser
from tests.github.runner_host import (
    TRAP,
    WAIT,
    RunnerHost,
    emulated,
    runner_host,
    wait_for_more_polls,
    wait_online,
    wait_until,
)

LISTENER = ("/usr/bin/python3", "-I", "./bin/Runner.Listener", "run")
JOB = 'echo "$$" > job-started; echo working; exec sleep 300'


@pytest.fixture
def host(
    runner_dir: Path, runner_user: RunnerUser, emulator: GitHubEmulator, client: GitHubClient
) -> Iterator[RunnerHost]:
    with runner_host(runner_dir, runner_user, emulator) as made:
        token = client.registration_token(REPO).token.get_secret_value()
        done = made.configure(token)
        assert done.returncode == 0, done.stdout + done.stderr
        yield made


@contextlib.contextmanager
def running_job(host: RunnerHost) -> Iterator[tuple[EmulatedRunner, Job]]:
    """A job in progress on the online runner; its process group is SIGKILLed afterwards
    (a listener that never heard of the stop leaves it running)."""
    runner = emulated(host.emulator)
    assert runner is not None
    job = host.emulator.state.queue_job(runner, JOB)
    marker = host.root / "_work" / "job-started"
    wait_until(lambda: marker.exists() and marker.read_text().strip() != "", "the job to start")
    pgid = int(marker.read_text())
    try:
        assert runner.busy
        yield runner, job
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def assert_cleaned_up(runner: EmulatedRunner, job: Job, output: str) -> None:
    """What Runner.Listener does on SIGINT/SIGTERM: the job cancelled, the session gone."""
    assert job.status == "cancelled"
    assert "working" in job.output
    assert not runner.busy
    assert runner.session is None  # deleted, not timed out: the clock is frozen
    assert f"Cancelling job {job.id}: runner shutdown" in output


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_trapped_run_sh_sends_sigint_to_the_listener_which_cleans_up(
    host: RunnerHost, emulator: GitHubEmulator, signum: signal.Signals, status: int
) -> None:
    run = host.start(env=TRAP)
    wait_online(emulator)
    with running_job(host) as (runner, job):
        run.send_signal(signum)  # to run.sh alone, as systemd's KillMode=mixed does
        assert run.wait(timeout=WAIT) == status  # 128 + the signal run.sh trapped
        output = run.stdout.read() if run.stdout else ""
        assert_cleaned_up(runner, job, output)
        assert "Runner listener exit with 0 return code" in output  # SIGINT: a clean 0


def test_untrapped_run_sh_dies_of_sigterm_and_the_listener_hears_nothing(
    host: RunnerHost, emulator: GitHubEmulator
) -> None:
    run = host.start()
    wait_online(emulator)
    with running_job(host) as (runner, job):
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=WAIT) == -signal.SIGTERM  # killed at once, no handler
        wait_for_more_polls(emulator)  # the orphaned listener goes on polling
        assert job.status == "in_progress"
        assert runner.busy
        assert runner.session is not None


def test_untrapped_run_sh_waits_through_sigint_and_the_listener_hears_nothing(
    host: RunnerHost, emulator: GitHubEmulator
) -> None:
    run = host.start()
    wait_online(emulator)
    with running_job(host) as (runner, job):
        run.send_signal(signal.SIGINT)  # bash defers it until its foreground child ends
        wait_for_more_polls(emulator)
        assert run.poll() is None
        assert job.status == "in_progress"
        assert runner.session is not None


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 0), (signal.SIGTERM, 143)])
def test_the_listener_as_main_process_cleans_up_on_sigint_and_sigterm(
    host: RunnerHost, emulator: GitHubEmulator, signum: signal.Signals, status: int
) -> None:
    listener = host.start(*LISTENER, "--startuptype", "service")
    wait_online(emulator)
    with running_job(host) as (runner, job):
        listener.send_signal(signum)  # NixOS: KillSignal=SIGINT to Runner.Listener
        assert listener.wait(timeout=WAIT) == status
        output = listener.stdout.read() if listener.stdout else ""
        assert_cleaned_up(runner, job, output)


def test_the_next_listener_after_a_clean_stop_meets_no_conflict(
    host: RunnerHost, emulator: GitHubEmulator
) -> None:
    first = host.start(env=TRAP)
    wait_online(emulator)
    with running_job(host):
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=WAIT) == 143
    second = host.start(env=TRAP)

    def creates() -> list[int]:
        return [r["status"] for r in emulator.requests("actions/session-create")]

    wait_until(lambda: 200 in creates()[1:], "the second listener's session")
    assert creates() == [200, 200]  # no 409: the first listener deleted its session
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=WAIT) == 143
