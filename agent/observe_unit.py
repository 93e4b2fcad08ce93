"""The unit observer: systemd's view over D-Bus, the drop-in's marks, MainPID from /proc."""

from __future__ import annotations

import asyncio
import functools
import os
import re
from collections.abc import Callable, Sequence
from typing import Protocol

from dbus_fast.errors import DBusError

from agent.classify import UNIT_UNKNOWN
from agent.contracts import ProcessFacts, UnitState
from agent.logs import get_logger
from agent.observe_journal import JournalReader
from agent.observe_local import service_user_uid
from agent.unit_states import ActiveState, LoadState, UnitFileState
from helper.contract.dropin import lane_dropin_path, read_dropin_marks
from helper.contract.errors import SystemdFailed
from helper.contract.identifiers import UNIT_PREFIX
from helper.contract.lanes import RunnerLaneMaintainerDesiredState
from helper.contract.systemd import DbusSystemd, UnitProps

DROPIN_LIMIT = 64 * 1024
IN_FLIGHT = 16  # unit reads in flight at once on the pass's one bus connection

log = get_logger(__name__)


class UnitReader(Protocol):
    async def unit_properties(self, unit: str, *, load: bool = True) -> UnitProps: ...


def _read_nofollow(path: str, limit: int = DROPIN_LIMIT) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit).decode("utf-8", errors="replace")


LANE_UNIT_CGROUP = re.compile(r"/launchplane-runner@[^/]+\.service(?:/|$)")


def _ids(line: str) -> tuple[int, ...]:
    return tuple(int(x) for x in line.split()[1:] if x.isdigit())


def _cgroup_path(text: str) -> str:
    """The unified (or, on a hybrid host, the name=systemd) cgroup path of a process."""
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            paths[parts[1]] = parts[2]
    return paths.get("", paths.get("name=systemd", ""))


def process_facts(pid: int, proc_root: str = "/proc") -> ProcessFacts | None:
    """uids, gids, supplementary groups, argv and cgroup of a process; None when it is gone.
    Everything here is world-readable in /proc: the unprivileged agent can check it."""
    status = _read_nofollow(f"{proc_root}/{pid}/status")
    if status is None:
        return None
    fields = dict(line.partition(":")[::2] for line in status.splitlines())
    raw = _read_nofollow(f"{proc_root}/{pid}/cmdline") or ""
    return ProcessFacts(
        pid=pid,
        uids=_ids("Uid: " + fields.get("Uid", "")),
        gids=_ids("Gid: " + fields.get("Gid", "")),
        groups=_ids("Groups: " + fields.get("Groups", "")),
        cmdline=tuple(arg for arg in raw.split("\0") if arg),
        cgroup=_cgroup_path(_read_nofollow(f"{proc_root}/{pid}/cgroup") or ""),
    )


def outsiders(uid: int, proc_root: str = "/proc") -> tuple[ProcessFacts, ...]:
    """The processes whose real uid is `uid` that no lane unit owns: a runner started by hand,
    a job's process that left its unit, anything a lane cannot vouch for."""
    found = []
    try:
        names = os.listdir(proc_root)
    except OSError:
        return ()
    for name in names:
        if not name.isdigit():
            continue
        facts = process_facts(int(name), proc_root)
        if facts is None or not facts.uids or facts.uids[0] != uid:
            continue
        if LANE_UNIT_CGROUP.search(facts.cgroup) is None:
            found.append(facts)
    return tuple(sorted(found, key=lambda f: f.pid))


def process_uid(pid: int, proc_root: str = "/proc") -> int | None:
    """The uid a process runs as: real, effective, saved and filesystem uid must agree."""
    status = _read_nofollow(f"{proc_root}/{pid}/status")
    for line in (status or "").splitlines():
        if line.startswith("Uid:"):
            uids = {int(x) for x in line.split()[1:]}
            return uids.pop() if len(uids) == 1 else -1
    return None


def in_cgroup(pid: int, control_group: str, proc_root: str = "/proc") -> bool:
    """Whether the process sits in the unit's own cgroup (any hierarchy: unified or named)."""
    if not control_group:
        return False
    text = _read_nofollow(f"{proc_root}/{pid}/cgroup") or ""
    paths = [line.split(":", 2)[2] for line in text.splitlines() if line.count(":") >= 2]
    return any(p == control_group or p.startswith(control_group + "/") for p in paths)


async def observe_unit(
    reader: UnitReader,
    desired: RunnerLaneMaintainerDesiredState,
    *,
    unit_dir: str = "/etc/systemd/system",
    proc_root: str = "/proc",
    service_uid: int | None = None,
    journal: JournalReader | None = None,
) -> UnitState:
    """One lane's unit, asked of systemd alone (systemd loads the instance only when the
    lane's drop-in exists: see `DbusSystemd.unit_properties`)."""
    path = lane_dropin_path(desired, unit_dir)
    load = os.path.lexists(path)
    props = await reader.unit_properties(desired.systemd_unit_name, load=load)
    return unit_state(
        props, desired, path, proc_root=proc_root, service_uid=service_uid, journal=journal
    )


def unit_state(
    props: UnitProps,
    desired: RunnerLaneMaintainerDesiredState,
    path: str,
    *,
    proc_root: str = "/proc",
    service_uid: int | None = None,
    outsiders_of: Callable[[int], tuple[ProcessFacts, ...]] | None = None,
    journal: JournalReader | None = None,
) -> UnitState:
    """The UnitState of systemd's answer, the drop-in at `path`, /proc and (for an active
    unit) its listener's journal since it became active."""
    text = _read_nofollow(path)  # a linked drop-in is present but never ours
    marks = read_dropin_marks(text) if text is not None else None
    pid = props.main_pid
    return UnitState(
        unit_name=desired.systemd_unit_name,
        load_state=LoadState(props.load_state),  # a state systemd does not document: ValueError
        active_state=ActiveState(props.active_state),
        sub_state=props.sub_state,
        unit_file_state=UnitFileState(props.unit_file_state),
        main_pid=pid,
        main_pid_uid=process_uid(pid, proc_root) if pid else None,
        main_pid_in_unit_cgroup=in_cgroup(pid, props.control_group, proc_root) if pid else False,
        n_restarts=props.n_restarts,
        dropin_present=os.path.lexists(path),
        dropin_lane_mark=marks.lane if marks else None,
        dropin_hash=marks.hash if marks else None,
        dropin_hash_valid=marks.hash_valid if marks else False,
        dropin_path=path,
        drop_in_paths=props.drop_in_paths,
        need_daemon_reload=props.need_daemon_reload,
        user=props.user,
        group=props.group,
        working_directory=props.working_directory,
        exec_start=props.exec_start,
        active_enter_monotonic=props.active_enter_monotonic,
        main_process=process_facts(pid, proc_root) if pid else None,
        outsiders=()
        if service_uid is None
        else (outsiders_of or (lambda uid: outsiders(uid, proc_root)))(service_uid),
        listener_log=journal.listener_log(desired.systemd_unit_name, props.active_enter_monotonic)
        if journal is not None and props.active_state == "active" and props.active_enter_monotonic
        else None,
    )


async def observe_units(
    systemd: DbusSystemd,
    lanes: Sequence[RunnerLaneMaintainerDesiredState],
    *,
    unit_dir: str = "/etc/systemd/system",
    proc_root: str = "/proc",
    journal: JournalReader | None = None,
) -> dict[str, UnitState]:
    """Every lane's unit, the same UnitState `observe_unit` gives lane by lane, asking systemd
    twice for all lanes (the instances it holds; the unit files: instance files such as masks,
    and the template, `disabled` while no instance is enabled), then once per lane whose unit
    it holds, has a drop-in or a file of its own. The other lanes' units are neither loaded
    nor asked about one by one, unless some instance is enabled (the template is then not
    `disabled`): then each is asked its file state, still without loading it."""
    loaded = await systemd.loaded_units(f"{UNIT_PREFIX}*.service")
    files = await systemd.unit_file_states(f"{UNIT_PREFIX}*.service")
    template_disabled = files.get(f"{UNIT_PREFIX}.service") == "disabled"
    in_flight = asyncio.Semaphore(IN_FLIGHT)

    async def read(lane: RunnerLaneMaintainerDesiredState) -> UnitProps:
        unit = lane.systemd_unit_name
        async with in_flight:
            if unit in loaded or unit in files or os.path.lexists(lane_dropin_path(lane, unit_dir)):
                return await systemd.unit_properties(unit)
            if template_disabled:
                return UnitProps(unit=unit, unit_file_state="disabled")
            return await systemd.unloaded_unit_properties(unit)

    # the reads overlap (systemd answers one at a time; its answers and our parsing overlap);
    # the first failure fails the observation, and the reads still in flight are cancelled
    tasks = [asyncio.ensure_future(read(lane)) for lane in lanes]
    try:
        answers = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    outsiders_of = functools.cache(lambda uid: outsiders(uid, proc_root))
    return {
        lane.lane_name: unit_state(
            props,
            lane,
            lane_dropin_path(lane, unit_dir),
            proc_root=proc_root,
            service_uid=service_user_uid(lane.service_user),
            outsiders_of=outsiders_of,
            journal=journal,
        )
        for lane, props in zip(lanes, answers, strict=True)
    }


class DbusUnitObserver:
    """Reads every lane's unit over one system-bus connection per call."""

    def __init__(
        self,
        journal: JournalReader,
        bus_address: str | None = None,
        unit_dir: str = "/etc/systemd/system",
        proc_root: str = "/proc",
    ) -> None:
        self.journal = journal
        self.bus_address = bus_address
        self.unit_dir = unit_dir
        self.proc_root = proc_root

    async def _observe(
        self, lanes: Sequence[RunnerLaneMaintainerDesiredState]
    ) -> dict[str, UnitState]:
        async with DbusSystemd.connect(self.bus_address) as systemd:
            return await observe_units(
                systemd,
                lanes,
                unit_dir=self.unit_dir,
                proc_root=self.proc_root,
                journal=self.journal,
            )

    def observe(self, lanes: Sequence[RunnerLaneMaintainerDesiredState]) -> dict[str, UnitState]:
        """Every lane's unit; if systemd cannot be reached or describes a unit in states it does
        not document, each is `unknown` (which blocks)."""
        try:
            return asyncio.run(self._observe(lanes))
        except (OSError, DBusError, SystemdFailed, ValueError) as exc:
            log.warning("systemd.unreachable", error=type(exc).__name__)
            return {
                lane.lane_name: UnitState(
                    unit_name=lane.systemd_unit_name,
                    load_state=UNIT_UNKNOWN,
                    active_state=ActiveState.UNKNOWN,
                    sub_state="unknown",
                    unit_file_state=UnitFileState.NONE,
                )
                for lane in lanes
            }
