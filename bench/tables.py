"""The tables: the pass, its parts, the targets, the helper and convergence sections."""

from __future__ import annotations

import math
from typing import Any

from bench import convergence, helper_latency, pass_cost
from bench.analysis import growth_cell, part_growth
from bench.fmt import _error_of, _load, ms_, s_, verdict
from bench.results import (
    HELPER_STATES,
    PART_GROUPS,
    TARGET_COLD_MS,
    TARGET_PASS_S,
    TARGET_RSS_MB,
    TARGET_WARM_MS,
    Results,
    grouped_parts,
    mb,
    ok,
    scale_of,
    series_list,
)


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


def parts_table(results: Results, lanes: int) -> list[str]:
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


def targets_table(results: Results) -> list[str]:
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


def helper_section(results: Results) -> list[str]:
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


def convergence_section(conv: dict[str, Any] | None, results: Results) -> list[str]:
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
    for name, s in conv.get("split", {}).items():
        how = "wall - connecting - window" if name == convergence.OWN else "emulator's log"
        out.append(
            f"| *{name}* | ({how}) | {s_(s['median'])} "
            f"| {s_(s['min'])} … {s_(s['max'])} | {100 * s['median'] / total:.0f} % |"
        )
    out.append("")
    out.append(
        f"{conv['completed']} of {conv['attempted']} runs completed; load average (1 min) "
        f"{_load(conv.get('load'))}."
    )
    return out


def print_summary(results: Results) -> None:
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
