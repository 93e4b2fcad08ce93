"""Benchmark results: where they are written, the targets, and how to read a part of them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TypedDict, TypeGuard

from bench.common import (
    REPO,
)

OUT_JSON = REPO / "build" / "bench" / "results.json"


DOC = REPO / "docs" / "performance.md"


PLOT = REPO / "docs" / "performance.png"


TARGET_PASS_S = 2.0


TARGET_RSS_MB = 80.0


TARGET_WARM_MS = 10.0


TARGET_COLD_MS = 400.0


HELPER_STATES = (("helper", "lane not running"), ("helper_running", "lane converged, running"))


# Parts of a pass, as bench/pass_worker.py times them, grouped for people.
PART_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("docker probe (once per pass: 3 `docker` runs)", ("docker_probe",)),
    (
        "audit store reads (latest(): the lane's directory, one record)",
        ("audit_get", "audit_latest"),
    ),
    ("audit store writes", ("audit_write",)),
    ("GitHub listing", ("github",)),
    ("units", ("units",)),
    ("baseline checks (Docker versions given)", ("baseline",)),
    ("runner directory", ("local_dir",)),
    ("plan", ("plan",)),
    ("other (keys, classify, records, logs)", ("other",)),
)


class Results(TypedDict, total=False):
    """One run of `make bench`, as build/bench/results.json holds it. The parts are the
    benchmarks' own JSON (bench.pass_cost, helper_latency, convergence); a part that failed
    is `{"error": ..., "traceback": ...}` (see `ok`)."""

    started: str
    finished: str
    machine: dict[str, Any]
    git: dict[str, Any]
    quiet_wait: dict[str, float]
    settings: dict[str, int]
    host: dict[str, Any]
    sandbox: dict[str, Any]
    load_at_end: Any


def load_results(path: Path) -> Results:
    loaded: Results = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def save_results(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ok(part: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(part, dict) and "error" not in part


def mb(mib: float) -> float:
    return mib * 1024 * 1024 / 1e6


def scale_of(series: dict[str, Any], lanes: int) -> dict[str, Any] | None:
    return next((d for d in series["scales"] if d["lanes"] == lanes), None)


def series_list(results: Results) -> list[tuple[str, dict[str, Any]]]:
    sandbox = results.get("sandbox", {})
    named = [
        ("host, fake units", results.get("host")),
        ("container, fake units", sandbox.get("container_fake")),
        ("container, D-Bus units", sandbox.get("container_dbus")),
    ]
    return [(name, s) for name, s in named if ok(s)]


def grouped_parts(parts: dict[str, float]) -> dict[str, float]:
    return {label: sum(parts.get(n, 0.0) for n in names) for label, names in PART_GROUPS}
