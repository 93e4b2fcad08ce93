"""An in-memory SystemdPort with systemd's semantics, for tests that need no PID 1.

Jobs are returned first and finish later (their result arrives on a later loop iteration,
like `JobRemoved`); unknown units are `not-found`; starting a unit that cannot load fails
like `NoSuchUnit`; instances of a known template load; enabling needs an [Install] section.
Transient steps really run their argv (as the caller, without a user switch) unless a
`step_handler` is given; stdin is the passed descriptor, exactly as systemd would wire it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from helper.contract.errors import SystemdFailed
from helper.contract.systemd import UnitFileChange, UnitProps
from helper.contract.transient import TransientOutcome, TransientSpec

StepHandler = Callable[[TransientSpec, bytes], int]


@dataclass
class FakeUnit:
    props: UnitProps
    log: list[str] = field(default_factory=list)


def run_step_for_real(spec: TransientSpec, stdin: bytes) -> int:
    """Default step handler: run the step's argv with its working directory and environment."""
    env = dict(item.split("=", 1) for item in spec.environment)
    env.setdefault("PATH", "/usr/bin:/bin")
    proc = subprocess.run(
        list(spec.argv),
        input=stdin,
        cwd=spec.working_directory,
        env=env,
        capture_output=True,
        timeout=spec.timeout,
        check=False,
    )
    return proc.returncode


class FakeSystemd:
    """SystemdPort in memory. `templates` are template names (`foo@.service`) that exist."""

    def __init__(
        self,
        templates: Sequence[str] = ("launchplane-runner@.service",),
        step_handler: StepHandler = run_step_for_real,
    ) -> None:
        self.templates = set(templates)
        self.units: dict[str, FakeUnit] = {}
        self.calls: list[tuple[str, str]] = []
        self.transients: list[tuple[TransientSpec, bytes]] = []
        self.job_results: dict[str, str] = {}
        """Force a job result per unit (e.g. 'failed'); default 'done'."""
        self.step_handler = step_handler
        self.reloads = 0
        self._next_job = 0
        self._next_pid = 1000

    # --- helpers for tests -------------------------------------------------------------

    def _loadable(self, unit: str) -> bool:
        if unit in self.units and self.units[unit].props.load_state == "loaded":
            return True
        if "@" in unit:
            prefix, _, rest = unit.partition("@")
            suffix = rest[rest.rfind(".") :]
            return f"{prefix}@{suffix}" in self.templates
        return False

    def state(self, unit: str) -> UnitProps:
        if unit in self.units:
            return self.units[unit].props
        if self._loadable(unit):
            return UnitProps(unit=unit, load_state="loaded", unit_file_state="disabled")
        return UnitProps(unit=unit)

    def set_state(self, unit: str, **changes: object) -> None:
        props = replace(self.state(unit), **changes)  # type: ignore[arg-type]
        self.units.setdefault(unit, FakeUnit(props)).props = props

    # --- SystemdPort -------------------------------------------------------------------

    async def reload(self) -> None:
        self.calls.append(("Reload", ""))
        self.reloads += 1
        await asyncio.sleep(0)

    async def enable_unit_files(self, units: Sequence[str]) -> tuple[UnitFileChange, ...]:
        changes: list[UnitFileChange] = []
        for unit in units:
            self.calls.append(("EnableUnitFiles", unit))
            if not self._loadable(unit):
                raise SystemdFailed(f"EnableUnitFiles: {unit}: No such file or directory")
            if self.state(unit).unit_file_state != "enabled":
                self.set_state(unit, unit_file_state="enabled")
                changes.append(
                    UnitFileChange(
                        "symlink",
                        f"/etc/systemd/system/multi-user.target.wants/{unit}",
                        f"/usr/lib/systemd/system/{unit.split('@')[0]}@.service",
                    )
                )
        return tuple(changes)

    async def disable_unit_files(self, units: Sequence[str]) -> tuple[UnitFileChange, ...]:
        changes: list[UnitFileChange] = []
        for unit in units:
            self.calls.append(("DisableUnitFiles", unit))
            if self.state(unit).unit_file_state == "enabled":
                self.set_state(unit, unit_file_state="disabled")
                changes.append(
                    UnitFileChange(
                        "unlink", f"/etc/systemd/system/multi-user.target.wants/{unit}", ""
                    )
                )
        return tuple(changes)

    async def _job(self, member: str, unit: str) -> str:
        self.calls.append((member, unit))
        if member != "StopUnit" and not self._loadable(unit):
            raise SystemdFailed(f"{member}: {unit}: {unit} not found (NoSuchUnit)")
        self._next_job += 1
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str] = loop.create_future()
        result = self.job_results.get(unit, "done")

        def finish() -> None:  # the JobRemoved signal, one loop iteration later
            if result == "done":
                if member == "StopUnit":
                    self.set_state(unit, active_state="inactive", sub_state="dead", main_pid=0)
                else:
                    self._next_pid += 1
                    self.set_state(
                        unit,
                        active_state="active",
                        sub_state="running",
                        main_pid=self._next_pid,
                        control_group=f"/system.slice/system-x.slice/{unit}",
                    )
            done.set_result(result)

        loop.call_soon(finish)
        return await done

    async def start_unit(self, unit: str, timeout: float) -> str:
        return await self._job("StartUnit", unit)

    async def restart_unit(self, unit: str, timeout: float) -> str:
        return await self._job("RestartUnit", unit)

    async def stop_unit(self, unit: str, timeout: float) -> str:
        return await self._job("StopUnit", unit)

    async def unit_properties(self, unit: str, *, load: bool = True) -> UnitProps:
        if not load and unit not in self.units and self._loadable(unit):
            # like systemd: an instance it does not hold, with no file of its own, is not loaded
            self.calls.append(("GetUnitFileState", unit))
            await asyncio.sleep(0)
            return UnitProps(unit=unit, unit_file_state="disabled")
        self.calls.append(("GetAll", unit))
        await asyncio.sleep(0)
        return self.state(unit)

    async def run_transient(self, spec: TransientSpec, stdin_fd: int) -> TransientOutcome:
        self.calls.append(("StartTransientUnit", spec.name))
        chunks = []
        while chunk := os.read(stdin_fd, 1 << 20):
            chunks.append(chunk)
        stdin = b"".join(chunks)
        self.transients.append((spec, stdin))
        status = await asyncio.to_thread(self.step_handler, spec, stdin)
        if status == 0:
            return TransientOutcome(spec.name, "done", 0, "success")
        return TransientOutcome(spec.name, "failed", status, "exit-code")
