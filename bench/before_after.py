"""Issue #17's figures before and now, the physical limits of the same run, the import times."""

from __future__ import annotations

from typing import Any

from bench import convergence
from bench.fmt import _load, ms_, s_
from bench.results import Results, ok, scale_of

BEFORE_SOURCE = (
    "*before*: docs/performance.md as regenerated on 2026-11-27 and the two runs quoted in "
    "issue #17"
)

Row = tuple[str, str, str, str, str]


def _median(part: Any, *keys: str) -> float | None:
    """part[keys...]["median"], or None where the run has no such figure."""
    for key in keys:
        if not isinstance(part, dict) or key not in part:
            return None
        part = part[key]
    value = part.get("median") if isinstance(part, dict) else None
    return float(value) if isinstance(value, int | float) else None


def fine(x: float | None) -> str:
    """Sub-millisecond figures (round trips) in µs; the rest as the document writes them."""
    return f"{x * 1e6:.0f} µs" if x is not None and x < 0.001 else ms_(x)


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "—"


def _sum(*values: float | None) -> float | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def limit(results: Results, name: str) -> float | None:
    return _median(results.get("sandbox", {}).get("limits"), "summary", name)


def rows(results: Results) -> list[Row]:
    """(figure, before, now, goal, physical limit in this run) per figure of issue #17."""
    sandbox = results.get("sandbox", {})
    dbus = sandbox.get("container_dbus")
    d200 = scale_of(dbus, 200) if ok(dbus) else None
    host = results.get("host")
    h1 = scale_of(host, 1) if ok(host) else None
    running, stopped = sandbox.get("helper_running"), sandbox.get("helper")
    ping = limit(results, "D-Bus Ping to PID 1")
    get_unit = limit(results, "D-Bus GetUnit (loaded unit)")
    echo = limit(results, "Unix-socket round trip (64 B echo)")
    bare = limit(results, "python -I -S -c pass")
    plain = limit(results, "python -c pass")
    floor = _sum(echo, get_unit)
    stopped_read = _median(stopped, "summary", "dbus GetAll in-process")
    conv = sandbox.get("convergence")
    conv_ok = ok(conv) and bool(conv.get("completed"))
    split = conv.get("split", {}) if conv_ok and isinstance(conv, dict) else {}
    imports = sandbox.get("imports")
    agent = imports.get("agent") if ok(imports) else None
    agent_imports = agent["packages"].get("total") if ok(agent) else None

    def st(part: Any, name: str) -> float | None:
        return _median(part, "summary", name)

    runs = conv.get("runs", []) if conv_ok and isinstance(conv, dict) else []
    waits = [r.get("online_wait") for r in runs if r.get("ok")]
    waits = [w for w in waits if w]
    wait_cost = (
        f"{waits[-1]['reads']} reads, {waits[-1]['not_modified']} of them 304, "
        f"{waits[-1]['rate_limit_used']} units (last run)"
        if waits
        else "—"
    )
    return [
        (
            "steady 200-lane pass, container, D-Bus units",
            "2.46 s / 2.28 s (600 sequential D-Bus calls)",
            s_(_median(d200, "steady", "wall")) if d200 else "—",
            "≤ 0.5 s",
            f"one D-Bus round trip to PID 1: {fine(ping)}",
        ),
        (
            "helper `status` warm, lane running",
            "7.3 … 10.3 ms",
            ms_(st(running, "status warm")),
            "≤ 3 ms",
            f"Unix-socket round trip + one GetUnit: {fine(floor)}",
        ),
        (
            "helper `status` warm, unit installed but stopped",
            "16.6 … 22.4 ms",
            ms_(st(stopped, "status warm")),
            "one systemd load + 2 ms",
            f"one in-process read of the stopped unit (a load): {fine(stopped_read)}; "
            f"+ round trip {fine(_sum(stopped_read, echo))}",
        ),
        (
            "`status` warm / `systemctl show`, running lane (same run)",
            "0.46 … 0.64",
            _ratio(st(running, "status warm"), st(running, "systemctl show")),
            "≤ 0.2",
            f"limit / `systemctl show`: {_ratio(floor, st(running, 'systemctl show'))}",
        ),
        (
            "`status` warm / `systemctl show`, stopped lane (same run)",
            "0.99 … 1.26",
            _ratio(st(stopped, "status warm"), st(stopped, "systemctl show")),
            "—",
            "limit / `systemctl show`: "
            + _ratio(_sum(stopped_read, echo), st(stopped, "systemctl show")),
        ),
        (
            "helper `status` cold (socket activation)",
            "276 … 379 ms",
            ms_(st(running, "status cold") or st(stopped, "status cold")),
            "≤ 150 ms",
            f"`python -I -S -c pass`: {fine(bare)}; `python -c pass`: {fine(plain)}",
        ),
        (
            "one timer pass, 1 lane, whole process (host, fake units)",
            "0.55 s (0.50 s start-up, imports, wiring)",
            s_(_median(h1, "timer_pass", "process_wall")) if h1 else "—",
            "≤ 0.25 s",
            f"`python -c pass` (container): {fine(plain)}",
        ),
        (
            "imports of `launchplane-agent reconcile --due` (importtime, self times)",
            "0.340 s (pydantic, httpx, cryptography, dbus-fast, structlog)",
            s_(agent_imports),
            "—",
            "—",
        ),
        (
            "convergence apply → completed",
            "3.39 s (3.4 … 3.5 s); no stability window then",
            s_(_median(conv, "wall")) if conv_ok else "—",
            "—",
            f"stability window (gates): {s_(_median(conv, 'phases', convergence.STABILITY))}"
            if conv_ok
            else "—",
        ),
        (
            "online: GitHub has it → the agent sees it",
            "up to one 2 s poll interval (online phase 2.01 s)",
            s_(_median(split, convergence.DETECT)),
            "≈ one short poll (0.25 s+)",
            "—",
        ),
        (
            "convergence, our own share (all but the runner connecting, stability window)",
            "≈ 3.4 s - the runner's connect",
            s_(_median(split, convergence.OWN)),
            "≤ 0.5 s",
            "—",
        ),
        (
            "GitHub cost of waiting for online",
            "an unconditional read (1 unit) every 2 s",
            wait_cost,
            "304s: 0 units",
            "—",
        ),
    ]


def before_after_section(results: Results) -> list[str]:
    out = [
        "| figure | before | now (median, this run) | goal | physical limit, same run |",
        "|---|---|---|---|---|",
    ]
    out += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows(results)]
    return [*out, "", BEFORE_SOURCE + "; *now* and the limits: this run."]


def limits_section(results: Results) -> list[str]:
    found = results.get("sandbox", {}).get("limits")
    if not ok(found):
        return [f"Not measured: {(found or {}).get('error', 'no sandbox')}"]
    out = ["| limit | median | min … max | n |", "|---|---|---|---|"]
    for name, s in found["summary"].items():
        out.append(
            f"| {name} | {fine(s['median'])} | {fine(s['min'])} … {fine(s['max'])} | {s['n']} |"
        )
    return [*out, "", f"Load average (1 min) {_load(found.get('load'))}."]


def imports_section(results: Results) -> list[str]:
    found = results.get("sandbox", {}).get("imports")
    if not ok(found):
        return [f"Not measured: {(found or {}).get('error', 'no sandbox')}"]
    columns = [
        ("helper cold start", found.get("helper")),
        ("agent `reconcile --due`", found.get("agent")),
    ]
    names: list[str] = []
    for _, part in columns:
        if ok(part):
            names += [n for n in part["packages"] if n not in names and n not in ("other", "total")]
    out = ["| package (self time, summed) | " + " | ".join(c for c, _ in columns) + " |"]
    out.append("|---" * (len(columns) + 1) + "|")

    def cell(part: Any, name: str) -> str:
        if not ok(part):
            return str((part or {}).get("error", "—"))
        value = part["packages"].get(name)
        return ms_(value) if value is not None else "·"

    for name in [*names, "other", "total"]:
        label = f"**{name}**" if name == "total" else name
        out.append(f"| {label} | " + " | ".join(cell(p, name) for _, p in columns) + " |")
    starts = ", ".join(
        f"{c}: {p['starts']} starts, {p['modules']} top-level packages, load {_load(p.get('load'))}"
        for c, p in columns
        if ok(p)
    )
    return [
        *out,
        "",
        f"· : not among that start's 12 largest (in *other*). Medians over the starts ({starts}).",
    ]
