"""The plot: docs/performance.png from a run's results."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.fmt import _error_of, _wrap
from bench.results import (
    HELPER_STATES,
    PART_GROUPS,
    TARGET_COLD_MS,
    TARGET_PASS_S,
    TARGET_WARM_MS,
    Results,
    grouped_parts,
    ok,
    series_list,
)


def _plot_pass(ax: Axes, results: Results) -> None:
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


def _plot_parts(ax: Axes, results: Results) -> None:
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


def _plot_helper(ax: Axes, results: Results) -> None:
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


def _plot_convergence(ax: Axes, results: Results) -> None:
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


def plot(results: Results, path: Path) -> None:
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
