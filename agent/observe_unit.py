"""Observe a lane's unit: systemd's view over D-Bus, the drop-in's marks, MainPID from /proc."""

from __future__ import annotations

import os
import re
from typing import Protocol

from agent.contracts import ProcessFacts, UnitState
from helper.dropin import lane_dropin_path, read_dropin_marks
from helper.lanes import RunnerLaneMaintainerDesiredState
from helper.systemd import UnitProps

DROPIN_LIMIT = 64 * 1024


class UnitReader(Protocol):
    async def unit_properties(self, unit: str) -> UnitProps: ...


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
) -> UnitState:
    props = await reader.unit_properties(desired.systemd_unit_name)
    path = lane_dropin_path(desired, unit_dir)
    text = _read_nofollow(path)  # a linked drop-in is present but never ours
    marks = read_dropin_marks(text) if text is not None else None
    pid = props.main_pid
    return UnitState(
        unit_name=desired.systemd_unit_name,
        load_state=props.load_state,
        active_state=props.active_state,
        sub_state=props.sub_state,
        unit_file_state=props.unit_file_state,
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
        outsiders=outsiders(service_uid, proc_root) if service_uid is not None else (),
    )
