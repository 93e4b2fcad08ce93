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
from helper.contract.unit_props import NOT_INSTALLED, UnitProps, props_from, unit_object_path

__all__ = [
    "NO_SUCH_UNIT",
    "DbusSystemd",
    "SharedSystemd",
    "SystemdPort",
    "TransientOutcome",
    "TransientSpec",
    "UnitFileChange",
    "UnitProps",
    "props_from",
    "transient_properties",
]

DESTINATION = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
SERVICE = "org.freedesktop.systemd1.Service"
PROPERTIES = "org.freedesktop.DBus.Properties"
NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"
FINISHED_KEPT = 1024
"""JobRemoved results kept for a job whose reply has not been read yet (the oldest go)."""
JOB_REMOVED_MATCH = (
    "type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',"
    "interface='org.freedesktop.systemd1.Manager',member='JobRemoved'"
)


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

    async def unit_properties(self, unit: str, *, load: bool = True) -> UnitProps: ...

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

    @property
    def connected(self) -> bool:
        return bool(self._bus.connected)

    def disconnect(self) -> None:
        self._bus.disconnect()

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
            while len(self._finished) > FINISHED_KEPT:  # every job on the host is announced
                del self._finished[next(iter(self._finished))]
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

    async def unit_properties(self, unit: str, *, load: bool = True) -> UnitProps:
        """systemd's view of the unit now, never from a cache. One call (GetAll over every
        interface at the unit's path; systemd loads the unit if it must). With load=False a
        unit systemd does not hold in memory is not loaded when its file state says no file
        or link makes it more than a template instance: it is then reported `not-found`,
        inactive, with that file state (loading would show only the template's defaults)."""
        if load:
            return props_from(unit, await self._get_all(unit_object_path(unit), ""))
        try:
            path = (await self._call("GetUnit", "s", [unit])).body[0]
        except SystemdFailed as exc:
            if NO_SUCH_UNIT not in str(exc):
                raise
            return await self.unloaded_unit_properties(unit)
        return props_from(unit, await self._get_all(path, ""))

    async def unloaded_unit_properties(self, unit: str) -> UnitProps:
        """A unit that is not in systemd's memory: its file state, without loading it; loaded
        and read in full when that state is anything but not-installed (masked, enabled,
        linked, no template at all...), so those answers are exactly what a load says."""
        try:
            state = str((await self._call("GetUnitFileState", "s", [unit])).body[0])
        except SystemdFailed:
            state = ""
        if state not in NOT_INSTALLED:
            return await self.unit_properties(unit)
        return UnitProps(unit=unit, unit_file_state=state)

    async def unit_file_states(self, pattern: str) -> dict[str, str]:
        """The unit files matching `pattern` in systemd's search path, name -> state, in one
        call (ListUnitFilesByPatterns: files named so in a unit directory, e.g. a masked
        instance or the template, whose state is `disabled` while no instance is enabled)."""
        reply = await self._call("ListUnitFilesByPatterns", "asas", [[], [pattern]])
        return {str(path).rsplit("/", 1)[-1]: str(state) for path, state in reply.body[0]}

    async def loaded_units(self, pattern: str) -> dict[str, str]:
        """Every unit matching `pattern` that systemd holds in memory, name -> object path, in
        one call (ListUnitsByPatterns loads nothing)."""
        reply = await self._call("ListUnitsByPatterns", "asas", [[], [pattern]])
        return {str(entry[0]): str(entry[6]) for entry in reply.body[0]}

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


class SharedSystemd:
    """The helper's connector: one system-bus connection for the life of the process,
    opened on first use and again after it drops. It shares the connection, never an answer:
    every property read is a new call to systemd."""

    def __init__(self, bus_address: str | None = None) -> None:
        self.bus_address = bus_address
        self._systemd: DbusSystemd | None = None
        self.connects = 0

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[DbusSystemd]:
        systemd = self._systemd
        if systemd is None or not systemd.connected:
            self.close()
            try:
                bus = await MessageBus(
                    bus_address=self.bus_address, bus_type=BusType.SYSTEM, negotiate_unix_fd=True
                ).connect()
            except Exception as exc:
                raise SystemdFailed(f"cannot connect to the system bus: {exc}") from None
            systemd = self._systemd = DbusSystemd(bus)
            self.connects += 1
        yield systemd

    def close(self) -> None:
        if self._systemd is not None:
            self._systemd.disconnect()
            self._systemd = None
