"""One question to systemd per pass (issue 17): the batched observation (`observe_units`:
ListUnitsByPatterns, then one GetAll per held or drop-in lane, a file-state read for the rest)
gives, on real systemd, the same UnitState as the lane-by-lane path and as the read it replaced
(LoadUnit + GetAll Unit + GetAll Service), for every shape a lane's unit can have; and it never
makes systemd load an instance that has no drop-in.

The agent's code runs here, on the host, against the container's bus, /etc and /proc.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.contracts import UnitState
from agent.observe_unit import observe_unit, observe_units, unit_state
from helper.contract.dropin import lane_dropin_path, render_dropin
from helper.contract.errors import SystemdFailed
from helper.contract.identifiers import unit_name_for
from helper.contract.lanes import RunnerLaneMaintainerDesiredState
from helper.contract.systemd import (
    NO_SUCH_UNIT,
    DbusSystemd,
    SharedSystemd,
    UnitProps,
    props_from,
)
from tests.planner import factories as f
from tests.sandbox import Sandbox
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = "launchplane-runner@.service"
RUN_TEMPLATE = f"/run/systemd/system/{TEMPLATE}"
UNIT_DIR = "/etc/systemd/system"
SLEEPER = "[Service]\nExecStart=\nExecStart=/bin/sleep infinity\n"
SHAPES = ("absent", "inactive", "active", "failed", "masked", "drifted", "enabled-unloaded")


def lane(shape: str) -> RunnerLaneMaintainerDesiredState:
    name = f"lp-batch-{shape}"
    return f.desired(lane_name=name, systemd_unit_name=unit_name_for(name))


def unit(shape: str) -> str:
    return lane(shape).systemd_unit_name


def dropin(shape: str) -> str:
    return lane_dropin_path(lane(shape), UNIT_DIR)


def build_world(box: Sandbox) -> None:
    """Each shape on its own lane; the template from the repo unless one is installed."""
    if box.exec("systemctl", "cat", TEMPLATE, check=False).returncode != 0:
        box.write_file(RUN_TEMPLATE, (REPO / "units" / TEMPLATE).read_text())
    box.write_file(dropin("inactive"), render_dropin(lane("inactive")))
    box.write_file(dropin("active"), SLEEPER)
    box.write_file(dropin("drifted"), SLEEPER)
    box.write_file(dropin("failed"), "[Service]\nExecStart=\nExecStart=/bin/false\nRestart=no\n")
    box.exec("ln", "-sf", "/dev/null", f"{UNIT_DIR}/{unit('masked')}")
    box.systemctl("daemon-reload")
    box.systemctl("start", unit("active"), unit("drifted"))
    box.systemctl("start", unit("failed"), check=False)
    wait_for(lambda: box.show(unit("failed"), "ActiveState")["ActiveState"] == "failed", timeout=20)
    # drifted: the drop-in on disk changes after systemd loaded it (NeedDaemonReload=yes)
    box.write_file(dropin("drifted"), SLEEPER + "Environment=DRIFT=1\n")
    # enabled by a link systemd has not been told about: not in its memory, yet enabled
    wants = f"{UNIT_DIR}/multi-user.target.wants"
    box.sh(
        'mkdir -p "$1" && ln -sf "$2" "$1/$3"',
        wants,
        f"/run/systemd/system/{TEMPLATE}",
        unit("enabled-unloaded"),
    )


def clear_world(box: Sandbox) -> None:
    units = [unit(s) for s in SHAPES]
    box.systemctl("stop", *units, check=False)
    box.systemctl("reset-failed", *units, check=False)
    box.sh(
        'rm -rf "$1"/launchplane-runner@lp-batch-* "$1"/multi-user.target.wants/'
        'launchplane-runner@lp-batch-* "$2"',
        UNIT_DIR,
        RUN_TEMPLATE,
    )
    box.systemctl("daemon-reload")


@pytest.fixture(scope="module")
def world(sandbox: Sandbox) -> Iterator[Sandbox]:
    clear_world(sandbox)
    build_world(sandbox)
    try:
        yield sandbox
    finally:
        clear_world(sandbox)


def host_view(box: Sandbox) -> dict[str, str]:
    root = f"/proc/{box.leader_pid}/root"
    return {"unit_dir": f"{root}{UNIT_DIR}", "proc_root": f"{root}/proc"}


async def is_loaded(systemd: DbusSystemd, name: str) -> bool:
    try:
        await systemd._call("GetUnit", "s", [name])
    except SystemdFailed as exc:
        if NO_SUCH_UNIT in str(exc):
            return False
        raise
    return True


async def replaced_read(systemd: DbusSystemd, name: str) -> UnitProps:
    """The read the batched path replaced, verbatim: LoadUnit, GetAll(Unit), GetAll(Service)."""
    path = (await systemd._call("LoadUnit", "s", [name])).body[0]
    props: dict[str, Any] = await systemd._get_all(path, "org.freedesktop.systemd1.Unit")
    if props.get("LoadState") == "loaded":
        props |= await systemd._get_all(path, "org.freedesktop.systemd1.Service")
    return props_from(name, props)


DECIDING = (
    "load_state",
    "active_state",
    "unit_file_state",
    "main_pid",
    "n_restarts",
    "dropin_present",
    "dropin_lane_mark",
    "dropin_hash_valid",
    "need_daemon_reload",
)


async def observe_three_ways(
    box: Sandbox,
) -> tuple[dict[str, UnitState], dict[str, UnitState], dict[str, UnitState], dict[str, bool]]:
    view = host_view(box)
    lanes = [lane(s) for s in SHAPES]
    async with DbusSystemd.connect(box.bus_address) as systemd:
        batched = await observe_units(
            systemd, lanes, unit_dir=view["unit_dir"], proc_root=view["proc_root"]
        )
        loaded_after = {s: await is_loaded(systemd, unit(s)) for s in SHAPES}
        per_unit = {
            ln.lane_name: await observe_unit(
                systemd, ln, unit_dir=view["unit_dir"], proc_root=view["proc_root"]
            )
            for ln in lanes
        }
        replaced = {
            ln.lane_name: unit_state(
                await replaced_read(systemd, ln.systemd_unit_name),
                ln,
                lane_dropin_path(ln, view["unit_dir"]),
                proc_root=view["proc_root"],
            )
            for ln in lanes
        }
    return batched, per_unit, replaced, loaded_after


def test_batched_observation_equals_the_per_unit_read_for_every_shape(world: Sandbox) -> None:
    batched, per_unit, replaced, loaded_after = asyncio.run(observe_three_ways(world))
    got = {s: batched[lane(s).lane_name] for s in SHAPES}
    # the world is what it claims to be (a comparison of wrong worlds would prove nothing)
    assert (got["active"].active_state, got["active"].main_pid > 0) == ("active", True)
    assert got["failed"].active_state == "failed"
    assert got["masked"].load_state == "masked"
    assert got["drifted"].need_daemon_reload
    assert got["inactive"].managed
    assert got["inactive"].load_state == "loaded"
    assert got["enabled-unloaded"].unit_file_state == "enabled"
    assert not got["absent"].exists
    # the batched path never had systemd load the instance with no drop-in and no file
    assert loaded_after["absent"] is False
    for shape in SHAPES:
        name = lane(shape).lane_name
        assert batched[name] == per_unit[name], shape
        if shape == "absent":
            # not loaded, so systemd's template defaults are not reported; what decides is equal
            for field in DECIDING[1:]:
                assert getattr(batched[name], field) == getattr(replaced[name], field), field
            assert batched[name].exists is replaced[name].exists is False
            assert batched[name].load_state == "not-found"
            assert replaced[name].load_state == "loaded"
        else:
            assert batched[name] == replaced[name], shape


async def observe_recording(box: Sandbox) -> tuple[dict[str, UnitState], list[tuple[str, str]]]:
    """The batched observation, with every call it made to systemd (member, first argument)."""
    view = host_view(box)
    calls: list[tuple[str, str]] = []
    async with DbusSystemd.connect(box.bus_address) as systemd:
        real = systemd._call

        async def recording(member: str, signature: str = "", body: Any = (), **kw: Any) -> Any:
            calls.append((member, str(body[0]) if body else kw.get("path", "")))
            return await real(member, signature, body, **kw)

        systemd._call = recording  # type: ignore[method-assign]
        batched = await observe_units(
            systemd,
            [lane(s) for s in SHAPES],
            unit_dir=view["unit_dir"],
            proc_root=view["proc_root"],
        )
    return batched, calls


def test_with_no_instance_enabled_an_absent_lane_costs_no_call_of_its_own(world: Sandbox) -> None:
    """The template's file state (`disabled`: no instance enabled anywhere) answers for every
    lane with no drop-in, no file and no unit in memory: nothing is asked about it alone."""
    world.sh('rm -f "$1"/multi-user.target.wants/"$2"', UNIT_DIR, unit("enabled-unloaded"))
    world.systemctl("daemon-reload")
    batched, calls = asyncio.run(observe_recording(world))
    absent = unit("absent")
    assert [c for c in calls if absent in c[1] or "lp_2dbatch_2dabsent" in c[1]] == []
    assert [c[0] for c in calls[:2]] == ["ListUnitsByPatterns", "ListUnitFilesByPatterns"]
    per_unit = asyncio.run(observe_three_ways(world))[1]
    for shape in SHAPES:
        assert batched[lane(shape).lane_name] == per_unit[lane(shape).lane_name], shape


async def shared_reads(box: Sandbox) -> list[tuple[str, int]]:
    shared = SharedSystemd(box.bus_address)
    seen = []
    for step in ("before", "stopped", "dropped", "started"):
        if step == "stopped":
            box.systemctl("stop", unit("active"))
        if step == "dropped":
            shared._systemd.disconnect()  # type: ignore[union-attr]
        if step == "started":
            box.systemctl("start", unit("active"))
        async with shared() as systemd:
            props = await systemd.unit_properties(unit("active"))
        seen.append((props.active_state, shared.connects))
    shared.close()
    return seen


def test_the_helpers_shared_connection_answers_what_systemd_says_now(world: Sandbox) -> None:
    """One connection for the helper's life, never a cached answer: a stop between two reads
    is seen by the second; a dropped connection is opened again."""
    assert asyncio.run(shared_reads(world)) == [
        ("active", 1),
        ("inactive", 1),
        ("inactive", 2),
        ("active", 2),
    ]
