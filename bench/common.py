"""Shared by the benchmarks: medians and spreads, growth fits, the machine and its load."""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def spread(values: Sequence[float]) -> tuple[float, float]:
    """(min, max): with 5-10 runs a quartile means little; the range says more."""
    return (min(values), max(values)) if values else (math.nan, math.nan)


def summary(values: Sequence[float]) -> dict[str, Any]:
    low, high = spread(values)
    return {"median": median(values), "min": low, "max": high, "n": len(values)}


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares exponent b of y = a * x^b (1: linear, 2: quadratic)."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(points) < 2:
        return math.nan
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return sxy / sxx if sxx else math.nan


def loadavg() -> tuple[float, float, float]:
    return os.getloadavg()


def quiet(threshold: float = 0.5, wait: float = 0.0, poll: float = 5.0) -> tuple[float, float]:
    """Wait up to `wait` seconds for the 1-minute load to fall below `threshold`; returns
    (1-minute load when we stop waiting, seconds waited). Bounded: never waits longer."""
    started = time.monotonic()
    while True:
        one = os.getloadavg()[0]
        waited = time.monotonic() - started
        if one < threshold or waited >= wait:
            return one, waited
        time.sleep(min(poll, max(0.0, wait - waited)))


def _first(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _command(*argv: str) -> str:
    if shutil.which(argv[0]) is None:
        return "unavailable"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unavailable"


def git_state() -> dict[str, Any]:
    """The commit measured and what differed from it (paths), if git is there."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "changed": []}
    return {"commit": head, "changed": [line[3:] for line in status.splitlines()]}


def machine() -> dict[str, Any]:
    """What the figures came from: CPU, RAM, kernel, Python, systemd."""
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8", errors="replace")
    mem_kib = int(_first(r"^MemTotal:\s+(\d+)", meminfo) or 0)
    os_release = Path("/etc/os-release").read_text(encoding="utf-8", errors="replace")
    return {
        "nproc": os.cpu_count(),
        "model_name": _first(r"^model name\s*:\s*(.*)$", cpuinfo),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _first(r'^PRETTY_NAME="?([^"\n]*)"?$', os_release),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "systemd": _command("systemctl", "--version"),
    }


MACHINE = "lp-bench"  # the benchmarks' sandbox container (bench.sandbox)
CONTAINER_CPU_STAT = (
    Path("/sys/fs/cgroup/unified/launchplane-sandbox") / MACHINE / "cpu.stat",  # hybrid
    Path("/sys/fs/cgroup/launchplane-sandbox") / MACHINE / "cpu.stat",  # pure cgroup v2
)


def _cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU time of the whole machine (all CPUs), from /proc/stat. Steal is time
    the hypervisor gave to others while this VM wanted to run: not busy here."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _ours_seconds() -> float:
    """CPU time of this process, its waited-for descendants (the agent children, the
    in-container runs started through nsenter, which stay in our cgroup) and everything in
    our container's cgroup (its systemd, bus, helper, units; exited ones included)."""
    own = sum(
        r.ru_utime + r.ru_stime
        for r in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )
    for path in CONTAINER_CPU_STAT:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("usage_usec "):
                return own + int(line.split()[1]) / 1e6
    return own


@contextmanager
def load_window() -> Iterator[dict[str, Any]]:
    """Load around the block: the load average (which counts this benchmark too: it keeps one
    to two of the CPUs busy); the others' share, the machine's busy CPU time minus ours (this
    process tree and our container), and the hypervisor's steal, as fractions of all CPUs."""
    started, (busy, steal), ours = time.monotonic(), _cpu_seconds(), _ours_seconds()
    info: dict[str, Any] = {"load_before": loadavg()}
    try:
        yield info
    finally:
        info["load_after"] = loadavg()
        elapsed = time.monotonic() - started
        busy_now, steal_now = _cpu_seconds()
        others = (busy_now - busy) - (_ours_seconds() - ours)
        capacity = elapsed * (os.cpu_count() or 1)
        info["others_cpu_share"] = max(0.0, others) / capacity
        info["steal_share"] = (steal_now - steal) / capacity
        info["seconds"] = elapsed


def last_json_line(text: str) -> Any:
    """The last line of a child's stdout that parses as JSON (children print one)."""
    for raw in reversed(text.strip().splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in output:\n{text[-2000:]}")


def python_for_children() -> str:
    return sys.executable


def uv_binary() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(REPO / ".tools/bin/uv")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no uv: run with `uv run` or `make bench` (or put uv on PATH)")


CACHE = Path("/var/tmp/launchplane-bench")  # noqa: S108 - root's cache, like the sandbox's


def runtime_python(cache: Path = CACHE) -> str:
    """The interpreter of a venv holding the project and only its runtime dependencies from
    uv.lock, as the package ships it (the dev venv also has rich and click, which httpx and
    structlog import when present: more start-up time and memory than production)."""
    key = hashlib.sha256(
        (REPO / "uv.lock").read_bytes() + (REPO / "pyproject.toml").read_bytes()
    ).hexdigest()[:16]
    venv = cache / f"runtime-{key}"
    python = venv / "bin" / "python"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
            subprocess.run(
                [uv_binary(), "sync", "--frozen", "--no-dev", "--quiet"],
                cwd=REPO,
                env=env,
                check=True,
                timeout=600,
            )
            (venv / ".complete").write_text("ok\n")
            for stale in cache.glob("runtime-*"):
                if stale != venv:
                    shutil.rmtree(stale, ignore_errors=True)
    return str(python)
