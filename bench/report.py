"""`make bench`: run the three benchmarks, print a table, write docs/performance.{md,png}.

    python -m bench [--quick] [--no-sandbox] [--wait-quiet S] [--from-json F]

Raw results go to build/bench/results.json; `--from-json` redraws the document and the plot
from such a file without measuring again. Every part is bounded in time; the sandbox parts
need root and are reported as skipped (with the reason) otherwise."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeGuard

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench import convergence, helper_latency, pass_cost
from bench.common import (
    REPO,
    git_state,
    loadavg,
    loglog_slope,
    machine,
    median,
    quiet,
    runtime_python,
)
from bench.sandbox import installed_host, unavailable_reason
from tests.systemd.installed import EMULATOR_SITE, PYTHON

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


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- measuring ----------------------------------------------------------------------------


def _guarded(name: str, fn: Callable[[], Any]) -> Any:
    """Run one part; an exception becomes {"error": ...} in the results, not a lost run."""
    try:
        return fn()
    except Exception as exc:  # a part that fails is reported, the others still run
        log(f"{name} failed: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def measure(ns: argparse.Namespace) -> dict[str, Any]:
    steady, restarts = (3, 3) if ns.quick else (5, 5)
    warm, cold, conv_runs = (15, 5, 3) if ns.quick else (30, 10, 5)
    load, waited = quiet(threshold=ns.quiet_load, wait=ns.wait_quiet)
    results: dict[str, Any] = {
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
    reason = "skipped (--no-sandbox)" if ns.no_sandbox else unavailable_reason()
    if reason:
        return {"error": reason}
    out: dict[str, Any] = {}
    try:
        with installed_host(log) as host:
            box = host.installed.sandbox
            out["python"] = box.exec(PYTHON, "-V").stdout.strip()
            out["systemd"] = box.exec("systemctl", "--version").stdout.splitlines()[0]
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
            if ok(out["convergence"]) and out["convergence"]["completed"]:
                log("helper latency, lane converged and running")
                out["helper_running"] = _guarded(
                    "helper latency (running lane)",
                    partial(
                        helper_latency.measure, box, warm=warm, cold=cold, reloads=min(warm, 10)
                    ),
                )
                convergence.cleanup(box)
    except Exception as exc:  # the container itself: every sandbox part is then missing
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc()
    return out


# --- reading results ------------------------------------------------------------------------


def ok(part: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(part, dict) and "error" not in part


def mb(mib: float) -> float:
    return mib * 1024 * 1024 / 1e6


def scale_of(series: dict[str, Any], lanes: int) -> dict[str, Any] | None:
    return next((d for d in series["scales"] if d["lanes"] == lanes), None)


def grouped_parts(parts: dict[str, float]) -> dict[str, float]:
    return {label: sum(parts.get(n, 0.0) for n in names) for label, names in PART_GROUPS}


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


def series_list(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    sandbox = results.get("sandbox", {})
    named = [
        ("host, fake units", results.get("host")),
        ("container, fake units", sandbox.get("container_fake")),
        ("container, D-Bus units", sandbox.get("container_dbus")),
    ]
    return [(name, s) for name, s in named if ok(s)]


# --- the table printed at the end --------------------------------------------------------------


def print_summary(results: dict[str, Any]) -> None:
    for name, series in series_list(results):
        print(f"\n## {name}")
        pass_cost.print_table(series)
    sandbox = results.get("sandbox", {})
    print()
    for key, label in HELPER_STATES:
        if ok(sandbox.get(key)):
            print(f"\n## {label}")
            helper_latency.print_table(sandbox[key])
        else:
            print(f"# helper latency, {label}:", (sandbox.get(key) or sandbox).get("error"))
    print()
    if ok(sandbox.get("convergence")):
        convergence.print_table(sandbox["convergence"])
    else:
        print("# convergence:", (sandbox.get("convergence") or sandbox).get("error"))


# --- the plot -------------------------------------------------------------------------------


def _plot_pass(ax: Axes, results: dict[str, Any]) -> None:
    for name, series in series_list(results):
        xs = [d["lanes"] for d in series["scales"]]
        ys = [d["steady"]["wall"]["median"] for d in series["scales"]]
        ax.plot(xs, ys, marker="o", label=name)
    ax.axhline(TARGET_PASS_S, color="red", linestyle="--", linewidth=1, label="target at 200 lanes")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("declared lanes (1, 10, 50, 200 over 1, 5, 10, 20 repositories)")
    ax.set_ylabel("steady pass wall time, s (median)")
    ax.set_title("1. Reconcile pass: wall time vs lanes")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _plot_parts(ax: Axes, results: dict[str, Any]) -> None:
    shipped = results.get("host")
    ax.set_title("1. Where a steady pass goes, per lane (host, fake units)")
    ax.grid(True, axis="y", alpha=0.3)
    if not ok(shipped):
        return
    lanes = [str(d["lanes"]) for d in shipped["scales"]]
    bottom = [0.0] * len(lanes)
    for label, _ in PART_GROUPS:
        values = [
            1000 * grouped_parts(d["steady"]["parts"])[label] / d["lanes"]
            for d in shipped["scales"]
        ]
        ax.bar(lanes, values, bottom=bottom, label=label, width=0.5)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xlabel("declared lanes")
    ax.set_ylabel("ms per lane (steady pass, median)")
    ax.set_xlim(-0.5, len(lanes) + 6.0)  # room on the right for the legend
    ax.legend(fontsize=7, loc="upper right")


def _plot_helper(ax: Axes, results: dict[str, Any]) -> None:
    sandbox = results.get("sandbox", {})
    ax.set_title("2. Helper verbs vs systemctl (in the sandbox)")
    ax.set_xlabel("client-side round trip, ms (median; log scale)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    states = [(label, sandbox[key]) for key, label in HELPER_STATES if ok(sandbox.get(key))]
    if not states:
        text = "\n".join(_wrap(_error_of(sandbox.get("helper"), results), 60))
        ax.text(0.5, 0.5, text, ha="center")
        return
    names = list(states[0][1]["summary"])
    height = 0.8 / len(states)
    for j, (label, helper) in enumerate(states):
        ys = [i + j * height for i in range(len(names))]
        values = [1000 * helper["summary"].get(n, {"median": math.nan})["median"] for n in names]
        ax.barh(ys, values, height=height, label=label, color=("tab:blue", "tab:green")[j % 2])
        for y, v in zip(ys, values, strict=True):
            ax.text(v, y, f" {v:.1f}", va="center", fontsize=7)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(names))], names)
    ax.axvline(TARGET_WARM_MS, color="black", linestyle="--", linewidth=1, label="warm target")
    ax.axvline(TARGET_COLD_MS, color="red", linestyle="--", linewidth=1, label="cold target")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="upper right")


def _plot_convergence(ax: Axes, results: dict[str, Any]) -> None:
    conv = results.get("sandbox", {}).get("convergence")
    ax.set_title("3. Convergence: apply -> completed, by phase")
    if not (ok(conv) and conv["completed"]):
        text = "\n".join(_wrap(_error_of(conv, results), 60))
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    names = list(conv["phases"])
    values = [conv["phases"][n]["median"] for n in names]
    ax.barh(names, values, color="tab:green")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.invert_yaxis()
    total = conv["wall"]["median"]
    ax.set_xlabel(f"seconds (median of {conv['completed']} runs); total {total:.2f} s")
    ax.grid(True, axis="x", alpha=0.3)


def plot(results: dict[str, Any], path: Path) -> None:
    fig = Figure(figsize=(15, 10))
    axes = fig.subplots(2, 2)
    _plot_pass(axes[0][0], results)
    _plot_parts(axes[0][1], results)
    _plot_helper(axes[1][0], results)
    _plot_convergence(axes[1][1], results)
    m = results["machine"]
    fig.suptitle(
        f"launchplane-runner-maintainer benchmarks - {m['nproc']} CPU {m['model_name']}, "
        f"{results['started']}",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def _error_of(part: Any, results: dict[str, Any]) -> str:
    if isinstance(part, dict) and part.get("error"):
        return str(part["error"])
    if isinstance(part, dict) and part.get("runs"):
        run = part["runs"][-1]
        blockers = "; ".join(run.get("blockers") or [])
        return f"not completed: {run.get('status')} - {run.get('error')} ({blockers})"
    return str(results.get("sandbox", {}).get("error") or "not measured")


# --- the document ---------------------------------------------------------------------------


def s_(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x >= 10:
        return f"{x:.1f} s"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x:.3f} s"


def ms_(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{1000 * x:.1f} ms" if x < 10 else s_(x)


def verdict(value: float | None, limit: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    return "**meets**" if value <= limit else "**misses**"


def _load(load: dict[str, Any] | None) -> str:
    if not load:
        return "—"
    before, after = load.get("load_before"), load.get("load_after")
    text = f"{before[0]:.2f} → {after[0]:.2f}" if before and after else "—"
    if load.get("others_cpu_share") is not None:
        text += f"; others' share of the CPUs {100 * load['others_cpu_share']:.0f} %"
    if load.get("steal_share") is not None:
        text += f", steal {100 * load['steal_share']:.0f} %"
    return text


def pass_table(series: dict[str, Any]) -> list[str]:
    out = [
        "| lanes / repos | cold: requests · units · wall | steady: requests (304) · units · "
        "wall · CPU | timer-style pass: process wall · CPU | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for d in series["scales"]:
        c, s, t = d["cold"], d["steady"], d["timer_pass"]
        cpu = s["cpu"]["median"] + s["children_cpu"]["median"]
        out.append(
            f"| {d['lanes']} / {d['repos']} "
            f"| {c['requests']} · {c['rate_limit_used']} · {s_(c['wall'])} "
            f"| {s['requests']['median']:.0f} ({s['not_modified']['median']:.0f}) · "
            f"{s['rate_limit_used']['median']:.0f} · {s_(s['wall']['median'])} · {s_(cpu)} "
            f"| {s_(t['process_wall']['median'])} · {s_(t['cpu_total']['median'])} "
            f"| {mb(d['peak_rss_mib']):.0f} MB |"
        )
    out.append("")
    g = series["growth"]
    if not math.isnan(g.get("exponent", math.nan)):
        out.append(
            f"Growth of the steady pass (wall): ∝ lanes^**{g['exponent']:.2f}** over 10-200 lanes; "
            f"50 → 200 lanes (x{g['lane_ratio']:.0f}) took x{g['time_ratio']:.1f}; "
            f"{g['ms_per_lane']:.1f} ms per lane at 200. CPU: ∝ lanes^"
            f"{series['growth_cpu']['exponent']:.2f}. Parts taking ≥ 5 % of the largest pass: "
            + ", ".join(f"{k} lanes^{v:.2f}" for k, v in part_growth(series).items())
            + "."
        )
    last = series["scales"][-1]
    out.append(
        f"Load average (1 min) during the series: {_load(series.get('load'))}. "
        f"Steady medians of {last['steady_runs']} passes, timer-style of "
        f"{last['restart_runs']} processes. Plans: {last['plans']}; units seen by the agent: "
        f"`{last['unit_sample']['load_state']}`. The emulator charged "
        f"{last['emulator']['units_charged']} rate-limit units for the whole {last['lanes']}-lane "
        f"series (every process, every pass): the cold pass's {last['cold']['rate_limit_used']}."
    )
    return out


def parts_table(results: dict[str, Any], lanes: int) -> list[str]:
    cols = [(n, d) for n, s in series_list(results) if (d := scale_of(s, lanes)) is not None]
    out = ["| part of a steady pass | " + " | ".join(n for n, _ in cols) + " |"]
    out.append("|---" * (len(cols) + 1) + "|")
    grouped = [(n, grouped_parts(d["steady"]["parts"])) for n, d in cols]
    for label, _ in PART_GROUPS:
        out.append(f"| {label} | " + " | ".join(s_(g[label]) for _, g in grouped) + " |")
    out.append(
        "| **whole pass (wall)** | "
        + " | ".join(f"**{s_(d['steady']['wall']['median'])}**" for _, d in cols)
        + " |"
    )
    return out


def targets_table(results: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []
    named = dict(series_list(results))
    shipped = results.get("host")
    big = scale_of(shipped, 200) if ok(shipped) else None
    if big:
        per_repo = big["steady"]["requests"]["median"] / big["repos"]
        rows.append(
            (
                "steady requests ≤ 1 per repository, all 304",
                "≤ 1",
                f"{per_repo:.2f} per repository, {big['steady']['not_modified']['median']:.0f} of "
                f"{big['steady']['requests']['median']:.0f} were 304 (200 lanes / 20 repos)",
                verdict(per_repo, 1.0),
            )
        )
        units = max(
            d["steady"]["rate_limit_used"]["max"] for s in named.values() for d in s["scales"]
        )
        rows.append(
            (
                "steady rate-limit units",
                "0",
                f"{units:.0f} (every scale, every series)",
                verdict(units, 0),
            )
        )
    for name, series in named.items():
        d = scale_of(series, 200)
        if d:
            wall = d["steady"]["wall"]["median"]
            rows.append(
                (
                    f"steady 200-lane pass wall — {name}",
                    "≤ 2 s",
                    s_(wall),
                    verdict(wall, TARGET_PASS_S),
                )
            )
    if named:
        peak = max(mb(d["peak_rss_mib"]) for s in named.values() for d in s["scales"])
        rows.append(
            (
                "agent peak RSS (any scale, any series)",
                "≤ 80 MB",
                f"{peak:.0f} MB",
                verdict(peak, TARGET_RSS_MB),
            )
        )
    for name, series in named.items():
        cell, b = growth_cell(series)
        rows.append(
            (
                f"growth of the steady pass — {name}",
                "≤ linear (exponent ≤ 1, +0.1 for noise)",
                cell,
                verdict(b, 1.1),
            )
        )
    sandbox = results.get("sandbox", {})
    for key, label in HELPER_STATES:
        helper = sandbox.get(key)
        if not ok(helper):
            continue
        sm = helper["summary"]
        for verb in ("status", "install-or-update-unit"):
            for temp, limit in (("warm", TARGET_WARM_MS), ("cold", TARGET_COLD_MS)):
                value = sm[f"{verb} {temp}"]["median"]
                rows.append(
                    (
                        f"helper `{verb}` {temp}, {label} (median)",
                        f"≤ {limit:.0f} ms",
                        ms_(value),
                        verdict(1000 * value, limit),
                    )
                )
    conv = results.get("sandbox", {}).get("convergence")
    if ok(conv) and conv["completed"]:
        slowest = max(conv["phases"].items(), key=lambda kv: kv[1]["median"])
        rows.append(
            (
                "convergence apply → completed (median)",
                "(no target)",
                f"{s_(conv['wall']['median'])}; slowest phase: {slowest[0]} "
                f"{s_(slowest[1]['median'])}",
                "—",
            )
        )
    else:
        rows.append(
            (
                "convergence apply → completed",
                "(no target)",
                _error_of(conv, results),
                "**blocked**",
            )
        )
    out = ["| target | limit | measured | |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return out


def helper_section(results: dict[str, Any]) -> list[str]:
    sandbox = results.get("sandbox", {})
    states = [(label, sandbox[key]) for key, label in HELPER_STATES if ok(sandbox.get(key))]
    if not states:
        return [f"Not measured: {_error_of(sandbox.get('helper'), results)}"]
    head = " | ".join(f"{label}: median (min … max)" for label, _ in states)
    out = [f"| operation | {head} | n |", "|---" * (len(states) + 2) + "|"]
    for name in states[0][1]["summary"]:
        cells = []
        for _, helper in states:
            st = helper["summary"].get(name)
            cells.append(
                f"{ms_(st['median'])} ({ms_(st['min'])} … {ms_(st['max'])})" if st else "—"
            )
        out.append(f"| {name} | {' | '.join(cells)} | {states[0][1]['summary'][name]['n']} |")
    out.append("")
    for label, helper in states:
        sm, server = helper["summary"], helper.get("server", {})

        def ratio(a: str, b: str, sm: dict[str, Any] = sm) -> str:
            return f"{sm[a]['median'] / sm[b]['median']:.2f}" if a in sm and b in sm else "—"

        parts = ", ".join(f"`{v}` {ms_(st['median'])}" for v, st in sorted(server.items()))
        out += [
            f"*{label}* — ratios in the same run: `status` warm / `systemctl show` "
            f"**{ratio('status warm', 'systemctl show')}**; unchanged `install-or-update-unit` "
            f"warm / `systemctl daemon-reload` "
            f"**{ratio('install-or-update-unit warm', 'systemctl daemon-reload')}**; `status` "
            f"cold / warm **{ratio('status cold', 'status warm')}**; `status` warm / one "
            f"in-process D-Bus read of the unit **{ratio('status warm', 'dbus GetAll in-process')}"
            f"**. The helper's own `duration_ms` (audit log, same requests): {parts}. Load "
            f"average (1 min) {_load(helper.get('load'))}; cold calls verified (helper inactive "
            f"before, active after): {'yes' if helper.get('cold_checks_ok') else 'NO'}.",
            "",
        ]
    return out


def convergence_section(conv: dict[str, Any], results: dict[str, Any]) -> list[str]:
    if not ok(conv) or not conv["completed"]:
        out = [f"**Blocked**: {_error_of(conv, results)}", ""]
        if ok(conv):
            run = conv["runs"][-1]
            out.append(
                f"The agent ran (exit {run['rc']}, {s_(run.get('wall'))}) and wrote a "
                f"`{run.get('status')}` record; observed shape `{run.get('shape')}`."
            )
        return out
    total = conv["wall"]["median"]
    out = [
        "| phase | steps (provider_evidence) | median | min … max | share |",
        "|---|---|---|---|---|",
    ]
    steps = dict(convergence.PHASES)
    for name, s in conv["phases"].items():
        out.append(
            f"| {name} | {', '.join(steps.get(name, ('(what is left of the wall)',)))} | "
            f"{s_(s['median'])} | {s_(s['min'])} … {s_(s['max'])} | "
            f"{100 * s['median'] / total:.0f} % |"
        )
    out.append(
        f"| **apply → completed** | agent process wall | **{s_(total)}** | "
        f"{s_(conv['wall']['min'])} … {s_(conv['wall']['max'])} | |"
    )
    out.append("")
    out.append(
        f"{conv['completed']} of {conv['attempted']} runs completed; load average (1 min) "
        f"{_load(conv.get('load'))}."
    )
    return out


def findings(results: dict[str, Any]) -> list[str]:
    """Numbered observations, each with its figure from this run."""
    out = pass_findings(results) + sandbox_findings(results)
    return [f"{i}. {text}" for i, text in enumerate(out, 1)]


FIX_PASS = (
    "63575ca",
    "A pass stays linear: Docker probed once per pass, audit records kept per lane",
)
FIX_PLANNER = (
    "05b76f2",
    "Planner linear in lanes: a file's name and directory counts are computed once",
)


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


def pass_findings(results: dict[str, Any]) -> list[str]:
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
            f"**Docker is probed once per pass.** `Agent.observe` calls `probe_docker()` (two "
            f"`docker version`, one `docker buildx version`) once and hands the versions to every "
            f"lane's `check_baseline`: {probes:.0f} probe{'' if probes == 1 else 's'} per steady "
            f"200-lane pass, "
            f"{s_(parts[docker_label])} of the {s_(wall)} (this host's `docker` CLI has no "
            "daemon to talk to; with one, each call also makes a round trip to it). Found by "
            "this benchmark (it ran three `docker` commands per lane, every pass) and fixed in "
            f'commit `{FIX_PASS[0]}` "{FIX_PASS[1]}".'
        )
        reads = parts[reads_label]
        out.append(
            f"**A lane's latest record costs one directory listing and one file.** Records live "
            f"in `audits/<lane>/`; `FilesystemAuditStore.latest(lane)` picks the lane's newest "
            f"file and parses it: {s_(reads)} for all 200 lanes of a steady pass "
            f"({1000 * reads / 200:.2f} ms per lane; "
            f"lanes^{part_exponent(shipped, reads_label):.2f}), independent of the other "
            "lanes' history. Found by this benchmark (`latest()` "
            "parsed every record of every lane, once per lane: lanes x records) and fixed in "
            f"the same commit `{FIX_PASS[0]}`."
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
            "one; found by this benchmark and fixed in commit "
            f'`{FIX_PLANNER[0]}` "{FIX_PLANNER[1]}" (`LanesFile.counts` and '
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


def sandbox_findings(results: dict[str, Any]) -> list[str]:
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
        out.append(
            f"**Convergence is dominated by {slowest[0]}** ({s_(slowest[1]['median'])} of "
            f"{s_(conv['wall']['median'])}). The executor polls GitHub for `online` every "
            "`poll_interval` = 2 s, so the online phase is a multiple of 2 s by construction."
        )
    return out


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    sandbox = results.get("sandbox", {})
    lines = [
        "# Performance",
        "",
        "What a reconcile pass costs and how that grows, how fast the helper answers, and how",
        "long a lane takes to converge. Written by `make bench` (`python -m bench`, see",
        "`bench/`) from one run on the machine below; the figures are medians of several runs",
        "and every comparison is a ratio measured in the same run. Nothing here is asserted by",
        "a test. ![benchmarks](performance.png)",
        "",
        "## Machine and load",
        "",
        f"- {m['nproc']} CPU, {m['model_name']}, {m['ram_gib']} GiB RAM; kernel {m['kernel']}; "
        f"{m['os']}",
        f"- host Python for the agent: {m['python']} (a venv with the runtime dependencies "
        "only, from uv.lock, as the package ships them); systemd on the host: "
        f"{m['systemd']} (not PID 1)",
        f"- sandbox container: {sandbox.get('systemd', '—')} as PID 1, "
        f"{sandbox.get('python', '—')} (Debian's, the installed package's venv)",
        f"- code: commit `{results.get('git', {}).get('commit', 'unknown')}`, working tree "
        "changes: "
        + (", ".join(f"`{p}`" for p in results.get("git", {}).get("changed", [])) or "none"),
        f"- run {results['started']} → {results.get('finished', '—')}; waited "
        f"{results['quiet_wait']['waited_s']} s for a quiet machine, 1-minute load average at "
        f"start {results['quiet_wait']['load_1min']:.2f}, at the end "
        f"{results.get('load_at_end', [math.nan])[0]:.2f}. The machine is shared with other "
        "engineers' test runs; the load of each series is given with it: the 1-minute load "
        "average before → after (it counts this benchmark too, which keeps one to two CPUs "
        "busy), the others' share of the CPUs during the series (the machine's busy time "
        "from /proc/stat minus this benchmark's process tree and container) and the steal "
        "(time the hypervisor gave elsewhere while this VM wanted to run; it rises with every "
        "burst of process creation here, such as the `docker` probes).",
        "",
        "## Targets",
        "",
        *targets_table(results),
        "",
        "## Findings",
        "",
        *findings(results),
        "",
        "## 1. Reconcile pass cost vs scale",
        "",
        "Lanes 1, 10, 50, 200 over 1, 5, 10, 20 repositories, all `apply = false` (a pass is",
        "observe → plan → `planned` record; the helper is never called). GitHub is the",
        "in-process `GitHubEmulator` with `validate=False` (no OpenAPI check: speed), on",
        "127.0.0.1, holding one runner per lane (online, labelled as declared, registered",
        "through its state API), so every listing is a real page of runners. Every lane has a",
        "runner directory with its `.runner` (BOM JSON), `run.sh` and `_work`, owned by the",
        "service user, in a temporary registration root. The agent is built by",
        "`agent.wiring.build_agent` as in production: `GitHubClient` with its ETag cache on disk,",
        "`FilesystemAuditStore`, the real directory observation, `check_baseline` and the",
        "Docker probe (`probe_docker`, once per pass), JSON logs rendered and discarded. Units",
        "come from `tests.agent.fakes.FakeUnits` (pure agent cost) or from the production",
        "`DbusUnitObserver` against the container's systemd.",
        "",
        "- *cold*: the first pass of a new process: empty ETag cache, empty audit store (it",
        "  writes one `planned` record per lane).",
        "- *steady*: the passes after it in the same process (median): every listing a 304, no",
        "  new record.",
        "- *timer-style*: a new process per pass, as the timer runs it (ETag cache and store",
        "  from disk): process wall from spawn to exit, and its CPU including start-up.",
        "- CPU: the agent process's own plus its children's (the `docker` probes). Peak RSS:",
        "  the process's `VmHWM`, the largest of all its processes at that scale. (`ru_maxrss`",
        "  would be wrong here: Linux carries it over `execve` from the forking parent, the",
        "  70 MB benchmark process; under systemd the parent is PID 1 and they agree.)",
        "- requests and units: the adapter's `RequestStats` (`requests`, `not_modified`,",
        "  `rate_limit_used`), cross-checked with the emulator's own rate-limit bucket.",
        "",
    ]
    for name, series in series_list(results):
        lines += [f"### {name}", "", *pass_table(series), ""]
    if not ok(results.get("host")):
        lines += [f"`host`: {(results.get('host') or {}).get('error', 'not measured')}", ""]
    for key in ("container_fake", "container_dbus"):
        if not ok(sandbox.get(key)):
            lines += [f"`{key}`: {_error_of(sandbox.get(key), results)}", ""]
    lines += ["### Where a steady 200-lane pass goes", "", *parts_table(results, 200), ""]
    lines += [
        "Exclusive wall time per call site (timers around the ports and functions the executor",
        "calls; a nested timed call is charged to the inner one), medians of the steady passes.",
        "",
        "## 2. Helper verb latency",
        "",
        "In the `lp-bench` container with the package installed by `tests/systemd/installed.py`",
        "(`install()`), real PID 1, socket-activated hardened helper. One Python process inside",
        "the container (the installed venv) times every call itself, so its own start-up is not",
        "counted. Counted for a helper verb: connect, request frame, the helper's work (peer",
        "check, lanes.toml, the verb, the fsync'd audit line), answer, parsing it — as the agent",
        "user (effective uid/gid switched around each call). *warm*: the helper already runs;",
        "*cold*: `systemctl stop launchplane-helper.service` first (not timed), so the timed",
        "call includes socket activation. `install-or-update-unit` is applied with the drop-in",
        "already current (the unchanged case: no write, no reload). Measured twice: on the",
        "example lane with its drop-in but its unit not running, and again after the",
        "convergence runs, on the converged lane (unit active, runner online).",
        "`systemctl show <unit>` and",
        "`systemctl daemon-reload` are timed as whole commands (fork/exec included), as an",
        "operator runs them; `dbus GetAll in-process` is how the agent itself reads a unit.",
        "Series are interleaved round by round.",
        "",
    ]
    lines += helper_section(results)
    lines += [
        "",
        "## 3. Convergence: apply → completed",
        "",
        "The example lane (`agent/examples/lanes.toml`) in the same container, the GitHub",
        "emulator inside it serving the runner emulator's release, the agent run as",
        "`tests/systemd/test_agent_e2e.py` runs it (`launchplane-agent --json apply` as",
        "launchplane-agent, real helper, real systemd). Every run starts from nothing: no unit,",
        "drop-in, runner directory, registration or cached archive. Total: the agent process's",
        'wall time, measured inside the container. Phases: `provider_evidence["steps"]` of the',
        "record (the executor's own timings); the rest of the wall is start-up, the observation",
        "before, the plan and writing records.",
        "",
        *convergence_section(sandbox.get("convergence"), results),
        "",
        "## Reproduce",
        "",
        "```sh",
        "make bench                     # everything, a few minutes; root for the sandbox parts",
        "uv run python -m bench --quick # fewer repetitions",
        "uv run python -m bench --no-sandbox",
        "uv run python -m bench.pass_cost --scales 10:5,200:20 [--units dbus]",
        "uv run python -m bench.helper_latency     # root",
        "uv run python -m bench.convergence        # root",
        "uv run python -m bench --from-json build/bench/results.json   # redraw only",
        "```",
        "",
        "Raw figures of this run: `build/bench/results.json` (not committed). The plot is drawn",
        "with matplotlib, a dev dependency only (`uv add --dev matplotlib`); the agent and the",
        "helper do not use it.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--no-sandbox", action="store_true", help="host part only")
    p.add_argument("--scales", type=pass_cost._parse_scales, default=list(pass_cost.DEFAULT_SCALES))
    p.add_argument("--wait-quiet", type=float, default=300.0, help="wait up to S s for low load")
    p.add_argument("--quiet-load", type=float, default=1.0, help="what counts as low load")
    p.add_argument("--from-json", type=Path, help="redraw from saved results; measure nothing")
    p.add_argument("--json", type=Path, default=OUT_JSON)
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument("--plot", type=Path, default=PLOT)
    ns = p.parse_args(argv)
    if ns.from_json:
        results = json.loads(ns.from_json.read_text(encoding="utf-8"))
    else:
        results = measure(ns)
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print_summary(results)
    plot(results, ns.plot)
    ns.doc.write_text(render(results), encoding="utf-8")
    print(f"\nwrote {ns.doc} and {ns.plot}" + ("" if ns.from_json else f"; raw: {ns.json}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
