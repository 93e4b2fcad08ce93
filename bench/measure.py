"""Measuring: run the three benchmarks (host, then the sandbox parts), each part guarded."""

from __future__ import annotations

import argparse
import datetime as dt
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any

from bench import convergence, helper_latency, limits, pass_cost
from bench.common import (
    git_state,
    loadavg,
    machine,
    quiet,
    runtime_python,
)
from bench.results import Results, log, ok
from bench.sandbox import installed_host, unavailable_reason
from tests.systemd.installed import EMULATOR_SITE, PYTHON


def _guarded(name: str, fn: Callable[[], Any]) -> Any:
    """Run one part; an exception becomes {"error": ...} in the results, not a lost run."""
    try:
        return fn()
    except Exception as exc:  # a part that fails is reported, the others still run
        log(f"{name} failed: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def measure(ns: argparse.Namespace) -> Results:
    steady, restarts = (3, 3) if ns.quick else (5, 5)
    warm, cold, conv_runs = (15, 5, 3) if ns.quick else (30, 10, 5)
    load, waited = quiet(threshold=ns.quiet_load, wait=ns.wait_quiet)
    results: Results = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": git_state(),
        "quiet_wait": {"load_1min": load, "waited_s": round(waited, 1)},
        "settings": {"steady": steady, "restarts": restarts, "warm": warm, "cold": cold},
    }
    python = runtime_python()
    results["host"] = _guarded(
        "host",
        partial(
            pass_cost.run,
            ns.scales,
            units="fake",
            steady=steady,
            restarts=restarts,
            python=python,
            progress=log,
        ),
    )
    results["sandbox"] = measure_sandbox(
        ns, steady=steady, restarts=restarts, warm=warm, cold=cold, conv_runs=conv_runs
    )
    results["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results["load_at_end"] = loadavg()
    return results


def measure_sandbox(
    ns: argparse.Namespace, *, steady: int, restarts: int, warm: int, cold: int, conv_runs: int
) -> dict[str, Any]:
    import_runs = 3 if ns.quick else 5
    reason = "skipped (--no-sandbox)" if ns.no_sandbox else unavailable_reason()
    if reason:
        return {"error": reason}
    out: dict[str, Any] = {}
    try:
        with installed_host(log) as host:
            box = host.installed.sandbox
            out["python"] = box.exec(PYTHON, "-V").stdout.strip()
            out["systemd"] = box.exec("systemctl", "--version").stdout.splitlines()[0]
            log("physical limits: D-Bus, Unix socket, process starts")
            out["limits"] = _guarded("limits", partial(limits.measure, box, runs=warm * 2))
            for units in ("fake", "dbus"):
                out[f"container_{units}"] = _guarded(
                    f"container {units}",
                    partial(
                        pass_cost.run_in_sandbox,
                        box,
                        ns.scales,
                        units=units,
                        steady=steady,
                        restarts=restarts,
                        python=PYTHON,
                        site=EMULATOR_SITE,
                    ),
                )
            log("helper latency, lane not running")
            out["helper"] = _guarded(
                "helper latency",
                partial(helper_latency.measure, box, warm=warm, cold=cold, reloads=min(warm, 10)),
            )
            log("convergence")
            out["convergence"] = _guarded(
                "convergence",
                partial(convergence.measure, host, runs=conv_runs, leave_running=True),
            )
            converged = ok(out["convergence"]) and out["convergence"]["completed"]
            if converged:
                log("helper latency, lane converged and running")
                out["helper_running"] = _guarded(
                    "helper latency (running lane)",
                    partial(
                        helper_latency.measure, box, warm=warm, cold=cold, reloads=min(warm, 10)
                    ),
                )
            log("import times: helper cold start, `launchplane-agent reconcile --due`")
            out["imports"] = _guarded("imports", partial(limits.imports, box, runs=import_runs))
            if converged:
                convergence.cleanup(box)
    except Exception as exc:  # the container itself: every sandbox part is then missing
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc()
    return out
