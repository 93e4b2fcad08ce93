"""Unit observation: drop-in marks from disk, MainPID uid and cgroup from /proc."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

from agent.observe_unit import in_cgroup, observe_unit, process_uid
from helper.contract.dropin import dropin_dir_name, render_dropin
from helper.contract.systemd import UnitProps
from tests.planner import factories as f


class Reader:
    def __init__(self, props: UnitProps) -> None:
        self.props = props

    async def unit_properties(self, unit: str, *, load: bool = True) -> UnitProps:
        assert unit == self.props.unit
        return self.props


def own_cgroup() -> str:
    line = Path("/proc/self/cgroup").read_text().splitlines()[0]
    return line.split(":", 2)[2]


def test_process_uid_and_cgroup_of_this_process() -> None:
    assert process_uid(os.getpid()) == os.getuid()
    assert process_uid(2**22 + 12345) is None
    assert in_cgroup(os.getpid(), own_cgroup())
    assert not in_cgroup(os.getpid(), "/system.slice/other.service")
    assert not in_cgroup(os.getpid(), "")


def test_observe_reads_marks_and_process(tmp_path: Path) -> None:
    lane = f.desired()
    d = tmp_path / dropin_dir_name(lane.lane_name)
    d.mkdir()
    (d / "50-lane.conf").write_text(render_dropin(lane))
    props = UnitProps(
        unit=lane.systemd_unit_name,
        load_state="loaded",
        active_state="active",
        sub_state="running",
        unit_file_state="enabled",
        main_pid=os.getpid(),
        control_group=own_cgroup(),
    )
    state = asyncio.run(observe_unit(Reader(props), lane, unit_dir=str(tmp_path)))
    assert state.managed
    assert state.dropin_lane_mark == lane.lane_name
    assert state.main_pid_uid == os.getuid()
    assert state.main_pid_in_unit_cgroup


def test_tampered_or_linked_dropin_is_not_owned(tmp_path: Path) -> None:
    lane = f.desired()
    d = tmp_path / dropin_dir_name(lane.lane_name)
    d.mkdir()
    (d / "50-lane.conf").write_text(render_dropin(lane).replace("run.sh", "evil.sh"))
    props = UnitProps(unit=lane.systemd_unit_name, load_state="loaded")
    state = asyncio.run(observe_unit(Reader(props), lane, unit_dir=str(tmp_path)))
    assert state.dropin_present
    assert not state.managed
    (d / "50-lane.conf").unlink()
    (tmp_path / "real.conf").write_text(render_dropin(lane))
    (d / "50-lane.conf").symlink_to(tmp_path / "real.conf")
    state = asyncio.run(observe_unit(Reader(props), lane, unit_dir=str(tmp_path)))
    assert state.dropin_present
    assert state.dropin_lane_mark is None
    assert not state.managed


def test_unreachable_systemd_is_unknown_and_classified_as_a_conflict(tmp_path: Path) -> None:
    from agent.classify import classify
    from agent.contracts import Shape
    from agent.observe_journal import JournalctlReader
    from agent.observe_unit import DbusUnitObserver

    observer = DbusUnitObserver(JournalctlReader(), bus_address=f"unix:path={tmp_path}/no-bus")
    state = observer.observe([f.desired()])[f.LANE]
    assert state.load_state == "unknown"
    result = classify(f.desired(), f.absent(unit=state))
    assert result.shape is Shape.UNKNOWN_CONFLICT
    assert any("systemd could not be asked" in r for r in result.reasons)


def test_a_state_systemd_does_not_document_is_refused_and_records_keep_strings(
    tmp_path: Path,
) -> None:
    import pytest

    lane = f.desired()
    odd = UnitProps(
        unit=lane.systemd_unit_name,
        load_state="loaded",
        active_state="hibernating",
        sub_state="x",
        unit_file_state="enabled",
    )
    with pytest.raises(ValueError, match="hibernating"):  # DbusUnitObserver: all `unknown`
        asyncio.run(observe_unit(Reader(odd), lane, unit_dir=str(tmp_path)))
    usual = dataclasses.replace(odd, active_state="active")
    state = asyncio.run(observe_unit(Reader(usual), lane, unit_dir=str(tmp_path)))
    dumped = state.model_dump(mode="json")
    assert (dumped["load_state"], dumped["active_state"]) == ("loaded", "active")
