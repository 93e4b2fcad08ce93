"""Analysis of a run: growth exponents, call counts and the numbered findings."""

from __future__ import annotations

import math
from typing import Any

from bench.common import (
    loglog_slope,
    median,
)
from bench.fmt import ms_, s_
from bench.results import (
    PART_GROUPS,
    TARGET_PASS_S,
    Results,
    grouped_parts,
    mb,
    ok,
    scale_of,
    series_list,
)


def part_growth(series: dict[str, Any]) -> dict[str, float]:
    """Exponent of each part of the steady pass vs lanes (10-200), for the parts that take at
    least 5 % of the largest scale's pass (a tiny part's exponent is mostly noise)."""
    big = [d for d in series["scales"] if d["lanes"] >= 10]
    if len(big) < 2:
        return {}
    last = grouped_parts(big[-1]["steady"]["parts"])
    wall = big[-1]["steady"]["wall"]["median"]
    out = {}
    for label, _ in PART_GROUPS:
        if last[label] < 0.05 * wall:
            continue
        ys = [grouped_parts(d["steady"]["parts"])[label] for d in big]
        out[label] = loglog_slope([float(d["lanes"]) for d in big], ys)
    return out


def growth_cell(series: dict[str, Any]) -> tuple[str, float]:
    """'lanes^b' of the pass and of its fastest-growing large part; the larger exponent."""
    overall = series["growth"].get("exponent", math.nan)
    parts = part_growth(series)
    if not parts:
        return f"lanes^{overall:.2f}", overall
    label, worst = max(parts.items(), key=lambda kv: kv[1])
    return f"pass lanes^{overall:.2f}; fastest part ({label}) lanes^{worst:.2f}", max(
        overall, worst
    )


def findings(results: Results) -> list[str]:
    """Numbered observations, each with its figure from this run."""
    out = pass_findings(results) + sandbox_findings(results)
    return [f"{i}. {text}" for i, text in enumerate(out, 1)]


# The changes that fixed what this benchmark found, by their titles (`git log --grep` finds them).
FIX_LINEAR_OBSERVE = "A pass stays linear: Docker probed once per pass, audit records kept per lane"


FIX_PLANNER = "Planner linear in lanes: a file's name and directory counts are computed once"


def part_exponent(series: dict[str, Any], label: str) -> float:
    """Exponent of one grouped part of the steady pass vs lanes (10-200), whatever its size."""
    big = [d for d in series["scales"] if d["lanes"] >= 10]
    ys = [grouped_parts(d["steady"]["parts"])[label] for d in big]
    return loglog_slope([float(d["lanes"]) for d in big], ys)


def steady_calls(series: dict[str, Any], lanes: int, name: str) -> float:
    """Median calls of one timed call site per steady pass at `lanes` (from the raw runs)."""
    for raw in series.get("raw", []):
        if raw["lanes"] == lanes:
            return median([float(p["calls"].get(name, 0)) for p in raw["fresh"]["passes"][1:]])
    return math.nan


def pass_findings(results: Results) -> list[str]:
    out: list[str] = []
    shipped = results.get("host")
    big = scale_of(shipped, 200) if ok(shipped) else None
    if ok(shipped) and big:
        wall = big["steady"]["wall"]["median"]
        parts = grouped_parts(big["steady"]["parts"])
        top = sorted(parts.items(), key=lambda kv: -kv[1])[:3]
        others = [
            f"{name.removeprefix('container, ')} {s_(d['steady']['wall']['median'])}"
            for name, series in series_list(results)
            if series is not shipped and (d := scale_of(series, 200))
        ]
        g = shipped["growth"]
        out.append(
            f"**A steady 200-lane pass takes {s_(wall)} on this host** ("
            f"{'meets' if wall <= TARGET_PASS_S else 'misses'} the 2 s target; "
            f"{g.get('ms_per_lane', math.nan):.1f} ms per lane), growing as "
            f"lanes^{g.get('exponent', math.nan):.2f} over 10-200 lanes (CPU lanes^"
            f"{shipped['growth_cpu'].get('exponent', math.nan):.2f}); "
            + (f"in the container: {', '.join(others)}. " if others else "")
            + "Its largest parts at 200 lanes: "
            + ", ".join(f"{k} {s_(v)} (lanes^{part_exponent(shipped, k):.2f})" for k, v in top)
            + "."
        )
        docker_label, reads_label = PART_GROUPS[0][0], PART_GROUPS[1][0]
        probes = steady_calls(shipped, 200, "docker_probe")
        out.append(
            f"**Docker is probed once per pass.** `Observer.observe` calls `probe_docker()` (two "
            f"`docker version`, one `docker buildx version`) once and hands the versions to every "
            f"lane's `check_baseline`: {probes:.0f} probe{'' if probes == 1 else 's'} per steady "
            f"200-lane pass, "
            f"{s_(parts[docker_label])} of the {s_(wall)} (this host's `docker` CLI has no "
            "daemon to talk to; with one, each call also makes a round trip to it). Found by "
            "this benchmark (it ran three `docker` commands per lane, every pass) and fixed by "
            f'the change "{FIX_LINEAR_OBSERVE}".'
        )
        reads = parts[reads_label]
        out.append(
            f"**A lane's latest record costs one directory listing and one file.** Records live "
            f"in `audits/<lane>/`; `FilesystemAuditStore.latest(lane)` picks the lane's newest "
            f"file and parses it: {s_(reads)} for all 200 lanes of a steady pass "
            f"({1000 * reads / 200:.2f} ms per lane; "
            f"lanes^{part_exponent(shipped, reads_label):.2f}), independent of the other "
            "lanes' history. Found by this benchmark (`latest()` "
            "parsed every record of every lane, once per lane: lanes x records) and fixed by "
            "the same change."
        )
        plan = parts["plan"]
        plan_growth = part_exponent(shipped, "plan")
        out.append(
            (
                "**The planner is linear in lanes.** "
                if plan_growth <= 1.1
                else f"**The planner still grows faster than lanes (lanes^{plan_growth:.2f}).** "
            )
            + f"`plan()` for all 200 lanes takes {s_(plan)} of a steady pass "
            f"(lanes^{plan_growth:.2f} over 10-200 lanes). Its duplicate checks counted every "
            "declared lane for each lane, and `desired in declared.lanes` compared models one by "
            "one; found by this benchmark and fixed by the change "
            f'"{FIX_PLANNER}" (`LanesFile.counts` and '
            "`LanesFile.declares` computed once)."
        )
    if ok(shipped):
        one = scale_of(shipped, 1)
        if one:
            t = one["timer_pass"]
            startup = t["process_wall"]["median"] - t["pass_wall"]["median"]
            out.append(
                f"**A timer-driven pass is mostly start-up at small scale.** The one-pass process "
                f"for 1 lane takes {s_(t['process_wall']['median'])}, of which "
                f"{s_(startup)} is interpreter start-up, imports (pydantic models, httpx, "
                f"cryptography via PyJWT, dbus-fast, structlog: {s_(t['imports_wall']['median'])}) "
                "and wiring; the pass itself is "
                f"{s_(t['pass_wall']['median'])}. Peak RSS is mostly those imports: "
                f"{mb(one['peak_rss_mib']):.0f} MB at 1 lane"
                + (
                    f", {mb(top['peak_rss_mib']):.0f} MB at {top['lanes']} lanes."
                    if (top := shipped["scales"][-1]) is not one
                    else "."
                )
            )
    return out


def _dbus_ratio(sandbox: dict[str, Any]) -> float | None:
    """In-process D-Bus read of the inactive unit / of the active one (section 2)."""
    idle, running = sandbox.get("helper"), sandbox.get("helper_running")
    if not (ok(idle) and ok(running)):
        return None
    key = "dbus GetAll in-process"
    a, b = idle["summary"].get(key), running["summary"].get(key)
    return a["median"] / b["median"] if a and b and b["median"] else None


def sandbox_findings(results: Results) -> list[str]:
    out: list[str] = []
    sandbox = results.get("sandbox", {})
    dbus, fake = sandbox.get("container_dbus"), sandbox.get("container_fake")
    if ok(dbus) and ok(fake):
        d, f = scale_of(dbus, 200), scale_of(fake, 200)
        if d and f:
            units = d["steady"]["parts"].get("units", 0.0)
            sysd = d["steady"].get("systemd_cpu") or {}
            out.append(
                f"**Reading 200 units over D-Bus costs {s_(units)} per pass** "
                f"({1000 * units / 200:.1f} ms per lane; systemd and dbus-daemon spent "
                f"{s_(sysd.get('median'))} of CPU on it), against "
                f"{s_(f['steady']['parts'].get('units', 0.0))} for the fake observer: the D-Bus "
                f"pass is x{d['steady']['wall']['median'] / f['steady']['wall']['median']:.2f} "
                f"the fake one in the same container"
                + (
                    f", which puts the D-Bus series over the 2 s target "
                    f"({s_(d['steady']['wall']['median'])} at 200 lanes)"
                    if d["steady"]["wall"]["median"] > TARGET_PASS_S
                    else ""
                )
                + f". The lanes' units are instances of the "
                f"installed template without a drop-in (`{d['unit_sample']['load_state']}`, "
                "inactive) — the state of every declared lane before its first apply. Nothing "
                "references such a unit, so systemd does not keep it: every `LoadUnit` loads it "
                "again"
                + (
                    f" (section 2: the same read of an active unit is x{cheaper:.1f} cheaper)"
                    if (cheaper := _dbus_ratio(sandbox)) is not None
                    else ""
                )
                + ". One `LoadUnit` and two `GetAll` per lane, sequentially, on one connection; "
                "a converged host's active units cost less."
            )
    helper, running = sandbox.get("helper"), sandbox.get("helper_running")
    if ok(helper):
        sm, server = helper["summary"], helper.get("server", {})
        w = sm["status warm"]["median"]
        srv = server.get("status", {}).get("median")
        dbus_ms = sm.get("dbus GetAll in-process", {}).get("median")
        text = (
            f"**A warm helper call is the helper's own work, mostly systemd's.** `status` warm "
            f"on a lane whose unit is not running: {ms_(w)} at the client, {ms_(srv)} inside the "
            f"helper (`duration_ms`); one in-process D-Bus read of that unit takes "
            f"{ms_(dbus_ms)}. The socket round trip is small; the verb loads and validates "
            "lanes.toml, walks the lane's paths without following links, reads the unit from "
            "systemd and appends an fsync'd audit line."
        )
        if ok(running):
            rs = running["summary"]
            text += (
                f" On the converged lane (unit active, so systemd keeps it loaded) the same "
                f"call takes {ms_(rs['status warm']['median'])} and the D-Bus read "
                f"{ms_(rs['dbus GetAll in-process']['median'])}: an inactive instance is "
                "loaded from disk and garbage-collected again on every read."
            )
        out.append(text)
        c = sm["status cold"]["median"]
        out.append(
            f"**Cold calls pay for a Python start.** Socket activation adds "
            f"{ms_(c - w)} to `status` ({ms_(c)} cold): systemd forks the hardened service, the "
            "venv's interpreter starts and imports pydantic, dbus-fast and the helper's modules "
            "before the first `accept()`. The helper then stays for 30 s of idleness, so within "
            "an apply only the first call is cold."
        )
    if ok(helper):
        out.append(
            "**Six helper starts within 10 s disable the helper until root intervenes.** "
            "`launchplane-helper.service` has systemd's default start limit (5 starts per "
            "10 s); the 6th activation fails the socket with `service-start-limit-hit`, "
            "`RemoveOnStop=yes` removes /run/launchplane/helper.sock, and every later call "
            "fails (`FileNotFoundError`) until `systemctl reset-failed` and a start of the "
            "socket (seen in the sandbox: stop + call, six times in a row). The benchmark "
            "resets the counter between its cold calls. In normal operation a start follows "
            "30 s of idleness, so only a helper that exits or crashes per request could hit "
            "it; `StartLimitIntervalSec=`/`StartLimitBurst=` on the service (or a `Restart`-"
            "style recovery of the socket) would decide what happens then."
        )
    conv = sandbox.get("convergence")
    if ok(conv) and conv["completed"]:
        slowest = max(conv["phases"].items(), key=lambda kv: kv[1]["median"])
        split = {k: v["median"] for k, v in conv.get("split", {}).items()}
        seen = split.get("online: GitHub has it → the agent sees it")
        out.append(
            f"**Convergence's largest phase is {slowest[0]}** ({s_(slowest[1]['median'])} of "
            f"{s_(conv['wall']['median'])}). Verify waits for `online` with a fresh read, then "
            "conditional reads (free 304s) 0.25 s apart, growing x1.25 to 2 s: GitHub's "
            f"`online` reached the agent after {s_(seen)} (the emulator's log: the listener's "
            "session, verify's read); the stability window the gates require is its own phase."
        )
    return out
