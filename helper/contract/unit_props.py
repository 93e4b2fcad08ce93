"""What systemd says of a unit (UnitProps), built from a GetAll answer; the unit's object path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/"
NOT_INSTALLED = frozenset({"disabled", "static"})
"""What GetUnitFileState says of an instance that no file names and no link enables: loading
it would only show the template's defaults, so it is not loaded (`DbusSystemd.unit_properties`)."""

RESULT_TYPES = frozenset({"service", "socket", "timer", "path"})
"""Unit types whose Result the agent's `doctor` reads (a start limit shows there)."""


@dataclass(frozen=True)
class UnitProps:
    """What the helper reads about a unit (a not-loaded unit has load_state `not-found`)."""

    unit: str
    load_state: str = "not-found"
    active_state: str = "inactive"
    sub_state: str = "dead"
    unit_file_state: str = ""
    main_pid: int = 0
    n_restarts: int = 0
    control_group: str = ""
    fragment_path: str = ""
    drop_in_paths: tuple[str, ...] = ()
    need_daemon_reload: bool = False
    active_enter_monotonic: int = 0  # µs; changes whenever the unit (re)enters `active`
    user: str = ""
    group: str = ""
    working_directory: str = ""
    exec_start: tuple[tuple[str, ...], ...] = ()  # the argv of every ExecStart= line
    result: str = ""  # the unit type's Result (`start-limit-hit`, `trigger-limit-hit`, ...)

    @property
    def running(self) -> bool:
        return self.active_state in {"active", "activating", "reloading", "deactivating"}

    @property
    def enabled(self) -> bool:
        return self.unit_file_state in {"enabled", "enabled-runtime", "linked", "linked-runtime"}

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "load_state": self.load_state,
            "active_state": self.active_state,
            "sub_state": self.sub_state,
            "unit_file_state": self.unit_file_state,
            "main_pid": self.main_pid,
            "n_restarts": self.n_restarts,
            "control_group": self.control_group,
            "fragment_path": self.fragment_path,
            "drop_in_paths": list(self.drop_in_paths),
            "need_daemon_reload": self.need_daemon_reload,
            "active_enter_monotonic": self.active_enter_monotonic,
            "user": self.user,
            "group": self.group,
            "working_directory": self.working_directory,
            "exec_start": [list(argv) for argv in self.exec_start],
        }


def unit_object_path(unit: str) -> str:
    """systemd's object path for a unit name (sd_bus_path_encode: every byte that is not
    [A-Za-z0-9] becomes `_xx`); reading properties there loads the unit as LoadUnit would."""
    label = "".join(
        chr(b) if chr(b).isascii() and chr(b).isalnum() else f"_{b:02x}" for b in unit.encode()
    )
    return UNIT_PATH_PREFIX + (label or "_")


def props_from(unit: str, props: dict[str, Any]) -> UnitProps:
    """UnitProps from a GetAll answer (the Service fields only for a loaded service; the
    Result of a loaded service, socket, timer or path unit)."""
    loaded = props.get("LoadState") == "loaded"
    service = props if unit.endswith(".service") and loaded else {}
    typed = props if loaded and unit.rsplit(".", 1)[-1] in RESULT_TYPES else {}
    return UnitProps(
        unit=unit,
        load_state=str(props.get("LoadState", "")),
        active_state=str(props.get("ActiveState", "")),
        sub_state=str(props.get("SubState", "")),
        unit_file_state=str(props.get("UnitFileState", "")),
        main_pid=int(service.get("MainPID", 0)),
        n_restarts=int(service.get("NRestarts", 0)),
        control_group=str(service.get("ControlGroup", "")),
        fragment_path=str(props.get("FragmentPath", "")),
        drop_in_paths=tuple(str(p) for p in props.get("DropInPaths", ())),
        need_daemon_reload=bool(props.get("NeedDaemonReload", False)),
        active_enter_monotonic=int(props.get("ActiveEnterTimestampMonotonic", 0)),
        user=str(service.get("User", "")),
        group=str(service.get("Group", "")),
        working_directory=str(service.get("WorkingDirectory", "")),
        exec_start=tuple(
            tuple(str(arg) for arg in entry[1]) for entry in service.get("ExecStart", ())
        ),
        result=str(typed.get("Result", "")),
    )
