"""Formatting figures for the document: seconds, milliseconds, verdicts, load."""

from __future__ import annotations

import math
from typing import Any

from bench.results import Results


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def _error_of(part: Any, results: Results) -> str:
    if isinstance(part, dict) and part.get("error"):
        return str(part["error"])
    if isinstance(part, dict) and part.get("runs"):
        run = part["runs"][-1]
        blockers = "; ".join(run.get("blockers") or [])
        return f"not completed: {run.get('status')} - {run.get('error')} ({blockers})"
    return str(results.get("sandbox", {}).get("error") or "not measured")


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
