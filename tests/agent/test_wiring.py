"""The timer's pass: one at a time per host; paths from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import PassLocked
from agent.settings import load_settings
from agent.wiring import pass_lock


def test_a_second_pass_is_refused_while_one_runs(tmp_path: Path) -> None:
    with pass_lock(str(tmp_path)), pytest.raises(PassLocked), pass_lock(str(tmp_path)):
        pass
    with pass_lock(str(tmp_path)):  # released: the next pass may run
        pass


def test_a_mutating_command_waits_for_the_pass_on_fake_time(tmp_path: Path) -> None:
    """A bounded wait (fake clock): it polls until its deadline, then says what holds it."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with (
        pass_lock(str(tmp_path)),
        pytest.raises(PassLocked, match=r"pass\.lock"),
        pass_lock(str(tmp_path), 1.0, sleep=sleep, clock=lambda: now[0]),
    ):
        pass
    assert now[0] >= 1.0
    assert len(slept) >= 5  # polled, not one long sleep


def test_paths_follow_systemd_and_launchplane_variables() -> None:
    paths = load_settings(
        {
            "CREDENTIALS_DIRECTORY": "/run/credentials/launchplane-agent.service",
            "RUNTIME_DIRECTORY": "/run/launchplane-agent",
            "LAUNCHPLANE_AUDIT_DIR": "/tmp/audits",
        }
    )
    assert paths.credentials == "/run/credentials/launchplane-agent.service"
    assert paths.runtime_dir == "/run/launchplane-agent"
    assert paths.audit_dir == "/tmp/audits"
    assert paths.lanes_file == "/etc/launchplane/lanes.toml"
    assert load_settings({}).credentials == "/etc/launchplane/credentials"
