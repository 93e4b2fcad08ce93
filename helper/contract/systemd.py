"""The systemd port: the few Manager calls the helper makes, over D-Bus with dbus-fast.

No `systemctl`, no shell. Jobs are awaited through `JobRemoved`, subscribed to before the
call that creates the job, so a job that finishes before its reply is read is not missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from helper.contract.errors import SystemdFailed
from helper.contract.transient import TransientOutcome, TransientSpec, transient_properties

DESTINATION = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
SERVICE = "org.freedesktop.systemd1.Service"
PROPERTIES = "org.freedesktop.DBus.Properties"
# The other unit types whose Result the agent's `doctor` reads (a start limit shows there).
TYPED = {t: f"org.freedesktop.systemd1.{t.capitalize()}" for t in ("socket", "timer", "path")}
NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"
JOB_REMOVED_MATCH = (
    "type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',"
    "interface='org.freedesktop.systemd1.Manager',member='JobRemoved'"
)


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


@dataclass(frozen=True)
class UnitFileChange:
    kind: str  # symlink | unlink | ...
    path: str
    source: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "source": self.source}


class SystemdPort(Protocol):
    """The narrow interface the verbs use; `DbusSystemd` is real, `FakeSystemd` in-memory."""

    async def reload(self) -> None: ...

    async def enable_unit_files(self, units: Sequence[str]) -> tuple[UnitFileChange, ...]: ...

    async def disable_unit_files(self, units: Sequence[str]) -> tuple[UnitFileChange, ...]: ...

    async def start_unit(self, unit: str, timeout: float) -> str: ...

    async def restart_unit(self, unit: str, timeout: float) -> str: ...

    async def stop_unit(self, unit: str, timeout: float) -> str: ...

    async def unit_properties(self, unit: str) -> UnitProps: ...

    async def run_transient(self, spec: TransientSpec, stdin_fd: int) -> TransientOutcome: ...


def _changes(body: Any) -> tuple[UnitFileChange, ...]:
    return tuple(UnitFileChange(str(k), str(p), str(s)) for k, p, s in body)


class DbusSystemd:
    """SystemdPort over a dbus-fast connection to the system bus (or `bus_address`)."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus
        self._finished: dict[str, str] = {}
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._subscribed = False

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, bus_address: str | None = None) -> AsyncIterator[DbusSystemd]:
        try:
            bus = await MessageBus(
                bus_address=bus_address, bus_type=BusType.SYSTEM, negotiate_unix_fd=True
            ).connect()
        except Exception as exc:
            raise SystemdFailed(f"cannot connect to the system bus: {exc}") from None
        try:
            yield cls(bus)
        finally:
            bus.disconnect()

    async def _subscribe(self) -> None:
        """Before the first job: JobRemoved signals for this connection (readers never ask)."""
        if self._subscribed:
            return
        self._subscribed = True
        self._bus.add_message_handler(self._on_message)
        await self._call(
            "AddMatch",
            "s",
            [JOB_REMOVED_MATCH],
            destination="org.freedesktop.DBus",
            path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus",
        )
        await self._call("Subscribe")

    def _on_message(self, msg: Message) -> None:
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.interface == MANAGER
            and msg.member == "JobRemoved"
            and msg.signature == "uoss"
        ):
            _, job, _, result = msg.body
            self._finished[job] = result
            waiter = self._waiting.pop(job, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(result)

    async def _call(
        self,
        member: str,
        signature: str = "",
        body: Sequence[Any] = (),
        *,
        destination: str = DESTINATION,
        path: str = MANAGER_PATH,
        interface: str = MANAGER,
        unix_fds: Sequence[int] = (),
    ) -> Message:
        reply = await self._bus.call(
            Message(
                destination=destination,
                path=path,
                interface=interface,
                member=member,
                signature=signature,
                body=list(body),
                unix_fds=list(unix_fds),
            )
        )
        if reply is None:
            raise SystemdFailed(f"{member}: no reply")
        if reply.message_type == MessageType.ERROR:
            detail = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise SystemdFailed(f"{member}: {reply.error_name}: {detail}".rstrip(": "))
        return reply

    async def _wait_job(self, job: str, timeout: float) -> str:
        if job in self._finished:
            return self._finished.pop(job)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[job] = waiter
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise SystemdFailed(f"job {job} did not finish within {timeout:.0f} s") from None
        finally:
            self._waiting.pop(job, None)

    async def reload(self) -> None:
        await self._call("Reload")

    async def enable_unit_files(self, units: Sequence[str]) -> tuple[UnitFileChange, ...]:
        reply = await self._call("EnableUnitFiles", "asbb", [list(units), False, False])
        return _changes(reply.body[1])

    async def disable_unit_files(self, units: Sequence[str]) -> tuple[UnitFileChange, ...]:
        reply = await self._call("DisableUnitFiles", "asb", [list(units), False])
        return _changes(reply.body[0])

    async def _job(self, member: str, unit: str, timeout: float) -> str:
        await self._subscribe()
        reply = await self._call(member, "ss", [unit, "replace"])
        return await self._wait_job(reply.body[0], timeout)

    async def start_unit(self, unit: str, timeout: float) -> str:
        return await self._job("StartUnit", unit, timeout)

    async def restart_unit(self, unit: str, timeout: float) -> str:
        return await self._job("RestartUnit", unit, timeout)

    async def stop_unit(self, unit: str, timeout: float) -> str:
        return await self._job("StopUnit", unit, timeout)

    async def _get_all(self, path: str, interface: str) -> dict[str, Any]:
        reply = await self._call("GetAll", "s", [interface], path=path, interface=PROPERTIES)
        return {k: v.value for k, v in reply.body[0].items()}

    async def unit_properties(self, unit: str) -> UnitProps:
        path = (await self._call("LoadUnit", "s", [unit])).body[0]
        props = await self._get_all(path, UNIT)
        service: dict[str, Any] = {}
        typed: dict[str, Any] = {}
        if unit.endswith(".service") and props.get("LoadState") == "loaded":
            service = typed = await self._get_all(path, SERVICE)
        elif props.get("LoadState") == "loaded" and unit.rsplit(".", 1)[-1] in TYPED:
            typed = await self._get_all(path, TYPED[unit.rsplit(".", 1)[-1]])
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

    async def run_transient(self, spec: TransientSpec, stdin_fd: int) -> TransientOutcome:
        props = [[name, Variant(sig, value)] for name, sig, value in transient_properties(spec)]
        await self._subscribe()
        reply = await self._call(
            "StartTransientUnit",
            "ssa(sv)a(sa(sv))",
            [spec.name, "fail", props, []],
            unix_fds=[stdin_fd],
        )
        job_result = await self._wait_job(reply.body[0], spec.timeout + 30)
        if job_result == "done":
            return TransientOutcome(spec.name, job_result, 0, "success")
        status: int | None = None
        result: str | None = None
        with contextlib.suppress(SystemdFailed):
            path = (await self._call("GetUnit", "s", [spec.name])).body[0]
            service = await self._get_all(path, SERVICE)
            status = int(service.get("ExecMainStatus", 0))
            result = str(service.get("Result", ""))
        with contextlib.suppress(SystemdFailed):
            await self._call("ResetFailedUnit", "s", [spec.name])
        return TransientOutcome(spec.name, job_result, status, result)
