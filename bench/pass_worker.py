"""The agent side of bench.pass_cost: one process, wired as production, timed passes.

Started by bench.pass_cost with `python -I -c BOOT REPO` and a JSON spec on stdin; prints one
JSON line. The imports at the top are what a timer-started agent imports (measured)."""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from agent import host, logs, reconcile
from agent.observe_journal import JournalctlReader
from agent.observe_unit import DbusUnitObserver
from agent.ports import UnitObserver
from agent.reconcile import Reconciler
from agent.settings import load_settings
from agent.wiring import build_agent

_F = TypeVar("_F", bound=Callable[..., Any])


class Timers:
    """Exclusive wall time per instrumented call site (a nested timed call is charged to the
    inner name only), so the parts add up to at most the pass."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._stack: list[float] = []

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def wrap(self, name: str, fn: _F) -> _F:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            self._stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                inner = self._stack.pop()
                self.seconds[name] += elapsed - inner
                self.calls[name] += 1
                if self._stack:
                    self._stack[-1] += elapsed

        return timed  # type: ignore[return-value]


def systemd_cpu_ticks() -> int | None:
    """utime+stime of PID 1 and dbus-daemon as this PID namespace sees them (inside the
    container: its systemd and its bus); None when unreadable."""
    pids = ["1"]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "dbus-daemon":
                    pids.append(entry.name)
            except OSError:
                continue
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += int(fields[11]) + int(fields[12])
    return total


def peak_rss_kib() -> int:
    """VmHWM: this process's own peak resident set. (ru_maxrss is not: Linux carries it over
    across execve from the parent that forked us, here a 70 MB emulator process.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def build(spec: dict[str, Any]) -> Reconciler:
    """`agent.wiring.build_agent` over the spec's files (production wiring); fake units when
    asked, the production D-Bus observer otherwise."""
    work = Path(spec["workdir"])
    environment = {
        "LAUNCHPLANE_GITHUB_API_URL": spec["api_url"],
        "LAUNCHPLANE_GITHUB_WEB_URL": spec["web_url"],
        "LAUNCHPLANE_LANES_FILE": str(work / "lanes.toml"),
        "LAUNCHPLANE_AUDIT_DIR": str(work / "audits"),
        "LAUNCHPLANE_CACHE_DIR": str(work / "cache"),
        "LAUNCHPLANE_RUNTIME_DIR": str(work / "run"),
        "LAUNCHPLANE_HELPER_SOCKET": str(work / "no-helper.sock"),  # dry-run: never called
        "LAUNCHPLANE_CREDENTIALS": spec["credentials"],
    }
    units: UnitObserver | None = None
    if spec["units"] == "fake":
        fakes = importlib.import_module("tests.agent.fakes")
        units = fakes.FakeUnits(fakes.World(root=work / "runners", unit_dir=work / "units"))
    elif spec.get("bus_address"):
        units = DbusUnitObserver(JournalctlReader(), bus_address=spec["bus_address"])
    return build_agent(load_settings(environment), units=units)


class Instrumented:
    """The agent with timers around each part of a pass, as shipped: the ports it calls, the
    Docker probe (once per pass, in `Observer.observe`), the baseline checks and the planner."""

    def __init__(self, agent: Reconciler) -> None:
        self.agent = agent
        self.timers = timers = Timers()
        observer, store = agent.observer, agent.recorder.store
        observer.github.list_runners = timers.wrap("github", observer.github.list_runners)  # type: ignore[method-assign]
        observer.units.observe = timers.wrap("units", observer.units.observe)  # type: ignore[method-assign]
        store.get = timers.wrap("audit_get", store.get)  # type: ignore[method-assign]
        store.append = timers.wrap("audit_write", store.append)  # type: ignore[method-assign]
        store.latest = timers.wrap("audit_latest", store.latest)  # type: ignore[method-assign]
        for module, name, part in (
            (host, "observe_directory", "local_dir"),
            (reconcile, "plan", "plan"),
        ):
            setattr(module, name, timers.wrap(part, getattr(module, name)))
        observer.host.docker = timers.wrap("docker_probe", observer.host.docker)  # type: ignore[method-assign]
        observer.host.baseline = timers.wrap("baseline", observer.host.baseline)  # type: ignore[method-assign]

    def one_pass(self, *, count_systemd: bool) -> dict[str, Any]:
        self.timers.reset()
        stats = self.agent.observer.github.stats
        before = (stats.requests, stats.not_modified, stats.rate_limit_used)
        ticks = systemd_cpu_ticks() if count_systemd else None
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        records = self.agent.reconcile_pass(every_lane=True)  # a due pass, every time
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        after = systemd_cpu_ticks() if ticks is not None else None
        parts = dict(self.timers.seconds)
        parts["other"] = max(0.0, wall - sum(parts.values()))
        return {
            "wall": wall,
            "cpu": cpu,
            "children_cpu": (children1.ru_utime + children1.ru_stime)
            - (children0.ru_utime + children0.ru_stime),
            "requests": stats.requests - before[0],
            "not_modified": stats.not_modified - before[1],
            "rate_limit_used": stats.rate_limit_used - before[2],
            "records_written": self.timers.calls["audit_write"],
            "statuses": dict(Counter(r.status for r in records)),
            "plans": dict(Counter(r.plan.status for r in records)),
            "parts": parts,
            "calls": dict(self.timers.calls),
            "systemd_cpu": None
            if ticks is None or after is None
            else (after - ticks) / os.sysconf("SC_CLK_TCK"),
        }


def run(spec: dict[str, Any], booted: float) -> dict[str, Any]:
    imports_wall = time.perf_counter() - booted
    startup_cpu = time.process_time()  # interpreter start-up and imports
    logs.configure(json_output=True, stream=open(os.devnull, "w"))  # noqa: SIM115 - as journald gets it, discarded
    started = time.perf_counter()
    agent = build(spec)
    build_wall = time.perf_counter() - started
    bench = Instrumented(agent)
    passes = [bench.one_pass(count_systemd=spec["units"] == "dbus") for _ in range(spec["passes"])]
    lane = agent.declared.lanes[0]
    unit = agent.observer.units.observe([lane])[lane.lane_name]
    return {
        "imports_wall": imports_wall,
        "startup_cpu": startup_cpu,
        "build_wall": build_wall,
        "passes": passes,
        "peak_rss_kib": peak_rss_kib(),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "audit_records": len(list(Path(spec["workdir"], "audits").glob("*/*.json"))),
        "github_stats": agent.observer.github.stats.as_evidence(),
        "unit_sample": {"load_state": unit.load_state, "active_state": unit.active_state},
    }


def main(booted: float) -> None:
    print(json.dumps(run(json.loads(sys.stdin.read()), booted)))
