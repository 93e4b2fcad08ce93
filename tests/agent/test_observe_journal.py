"""The listener's journal: a session held elsewhere is named; an unread journal proves nothing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from agent.contracts import Gate, ListenerLog
from agent.gates import evaluate_gates, listener_problems, stability_problems
from agent.observe_journal import (
    LISTENING,
    SESSION_CONFLICT,
    JournalctlReader,
    activation_realtime,
    may_read_journal,
    parse_listener_log,
)
from agent.observe_unit import observe_unit
from helper.contract.systemd import UnitProps
from tests.planner import factories as f

STARTED = "\u221a Connected to GitHub\n\nCurrent runner version: '2.330.0'\n"
HEALTHY = f"{STARTED}2026-12-02 09:00:00Z: {LISTENING}\n"
CONFLICTED = f"\n\u221a Connected to GitHub\n\n{SESSION_CONFLICT}\n" * 3
RECOVERED = f"{CONFLICTED}2026-12-02 09:01:30Z: Runner reconnected.\n{HEALTHY}"


def test_the_listeners_lines_are_read_as_the_runner_prints_them() -> None:
    assert parse_listener_log(HEALTHY) == ListenerLog(listening=True)
    assert parse_listener_log(CONFLICTED) == ListenerLog(session_conflicts=3)
    assert parse_listener_log(RECOVERED) == ListenerLog(session_conflicts=3, listening=True)
    # a conflict after it listened (its session was taken and re-created elsewhere)
    assert parse_listener_log(HEALTHY + CONFLICTED) == ListenerLog(session_conflicts=3)
    # a session that expired while it listened, re-created after conflicts (no new "Listening")
    again = f"{HEALTHY}{CONFLICTED}2026-12-02 09:03:00Z: Runner reconnected.\n"
    assert parse_listener_log(again) == ListenerLog(session_conflicts=3, listening=True)
    assert parse_listener_log("") == ListenerLog()


@pytest.mark.parametrize(
    ("journal", "problem"),
    [
        (ListenerLog(session_conflicts=8), "session_conflict"),
        (ListenerLog(), "session_unproven"),  # nothing since the activation: not yet proven
        (ListenerLog(unreadable="journalctl exited 1: x"), "session_unproven"),
        (None, "session_unproven"),  # an observer that did not read it proves nothing
    ],
)
def test_a_listener_that_does_not_hold_the_session_fails(
    journal: ListenerLog | None, problem: str
) -> None:
    unit = f.unit(listener_log=journal)
    (found,) = listener_problems(unit)
    assert found.startswith(f"{problem}: ")
    assert stability_problems(f.unit(), unit) == [found]


def test_a_listener_that_holds_the_session_passes() -> None:
    assert listener_problems(f.unit(listener_log=parse_listener_log(HEALTHY))) == []
    assert listener_problems(f.unit(listener_log=parse_listener_log(RECOVERED))) == []
    assert listener_problems(f.unit(active=False)) == []  # the unit gate names that
    assert stability_problems(f.unit(), f.unit()) == []


def test_the_conflict_fails_the_unit_gate_on_the_stability_samples_only() -> None:
    """Verification's first sample (right after GitHub shows online) is not judged by the
    listener's journal; the sample after the window is, and a replay or `status` passes its
    one observation as both."""
    post = f.observed(
        unit=f.unit(listener_log=ListenerLog(session_conflicts=2)),
        baseline=f.baseline().model_copy(update={"evidence": {"docker_cli": "27.0"}}),
    )
    args: dict[str, Any] = {
        "expected_dropin_hash": "ab" * 32,
        "provider_evidence": {"runner": {"id": 42}},
        "now": f.NOW,
    }
    first = evaluate_gates(f.declared(), f.desired(), post, **args)
    assert all(g.passed for g in first), first
    second = evaluate_gates(f.declared(), f.desired(), post, earlier=post, **args)
    (failed,) = [g for g in second if not g.passed]
    assert failed.gate is Gate.UNIT_ACTIVE
    assert failed.detail.startswith("session_conflict: ")


def test_the_activation_is_the_wall_clock_of_the_monotonic_stamp() -> None:
    # 100 s after boot the unit became active; now it is 250 s after boot, wall 1_000_000.5
    since = activation_realtime(100_000_000, monotonic=lambda: 250.0, realtime=lambda: 1e6 + 0.5)
    assert since == "@999850.500000"


def test_the_agent_may_read_the_journal_only_as_root_or_a_journal_group_member() -> None:
    assert may_read_journal(uid=lambda: 0, groups=lambda: [])
    assert not may_read_journal(uid=lambda: 1234, groups=lambda: [])


def fake_journalctl(tmp_path: Path, body: str) -> str:
    path = tmp_path / "journalctl"
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/argv\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_journalctl_is_asked_for_the_unit_since_its_activation(tmp_path: Path) -> None:
    (tmp_path / "out").write_text(CONFLICTED)
    reader = JournalctlReader(fake_journalctl(tmp_path, f"cat {tmp_path}/out"), lambda: True)
    assert reader.listener_log("launchplane-runner@a.service", 5) == ListenerLog(
        session_conflicts=3
    )
    argv = (tmp_path / "argv").read_text().split("\n")
    assert argv[argv.index("-u") + 1] == "launchplane-runner@a.service"
    assert argv[argv.index("--since") + 1].startswith("@")
    assert "-n" in argv  # bounded: the newest lines only


@pytest.mark.parametrize(
    ("body", "allowed", "why"),
    [
        ("echo 'Failed to open journal' >&2; exit 1", True, "journalctl exited 1"),
        ("exit 0", False, "may not read the system journal"),  # journalctl would show nothing
    ],
)
def test_an_unreadable_journal_is_unproven_not_clean(
    tmp_path: Path, body: str, allowed: bool, why: str
) -> None:
    reader = JournalctlReader(fake_journalctl(tmp_path, body), lambda: allowed)
    journal = reader.listener_log("launchplane-runner@a.service", 5)
    assert journal.unreadable is not None
    assert why in journal.unreadable
    assert listener_problems(f.unit(listener_log=journal))[0].startswith("session_unproven")


def test_a_missing_journalctl_is_unproven(tmp_path: Path) -> None:
    journal = JournalctlReader(str(tmp_path / "none"), lambda: True).listener_log("u", 5)
    assert journal.unreadable == "journalctl failed: FileNotFoundError"


class Reader:
    def __init__(self, props: UnitProps) -> None:
        self.props = props

    async def unit_properties(self, unit: str, *, load: bool = True) -> UnitProps:
        return self.props


class Journal:
    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def listener_log(self, unit: str, active_enter_monotonic: int) -> ListenerLog:
        self.asked.append((unit, active_enter_monotonic))
        return parse_listener_log(CONFLICTED)


def test_the_unit_observer_reads_the_journal_of_an_active_unit_only(tmp_path: Path) -> None:
    lane = f.desired()
    journal = Journal()
    props = UnitProps(
        unit=lane.systemd_unit_name,
        load_state="loaded",
        active_state="active",
        sub_state="running",
        main_pid=os.getpid(),
        active_enter_monotonic=77,
    )
    state = asyncio.run(observe_unit(Reader(props), lane, unit_dir=str(tmp_path), journal=journal))
    assert state.listener_log == ListenerLog(session_conflicts=3)
    assert journal.asked == [(lane.systemd_unit_name, 77)]
    stopped = UnitProps(unit=lane.systemd_unit_name, load_state="loaded")
    state = asyncio.run(
        observe_unit(Reader(stopped), lane, unit_dir=str(tmp_path), journal=journal)
    )
    assert state.listener_log is None
    assert len(journal.asked) == 1
