"""The benchmark report: its modules render a run (here one whose parts were all skipped), and
no commit id is written into its code (the document names changes by their titles)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.before_after import rows
from bench.document import render
from bench.limits import import_breakdown, medians
from bench.report import keep_sections
from bench.results import Results

BENCH = Path(__file__).resolve().parent.parent / "bench"
COMMIT_ID = re.compile(r"[\"'`][0-9a-f]{7,40}[\"'`]")


def skipped_run() -> Results:
    return {
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:01:00+00:00",
        "machine": {
            "nproc": 2,
            "model_name": "cpu",
            "ram_gib": 4,
            "kernel": "6.1",
            "os": "Debian 12",
            "python": "3.11",
            "systemd": "252",
        },
        "git": {"commit": "0" * 40, "dirty": False},
        "quiet_wait": {"load_1min": 0.1, "waited_s": 0.0},
        "settings": {"steady": 3, "restarts": 3, "warm": 15, "cold": 5},
        "host": {"error": "host part failed"},
        "sandbox": {"error": "skipped (--no-sandbox)"},
        "load_at_end": [0.1, 0.1, 0.1],
    }


def test_a_run_with_every_part_skipped_renders_and_says_why() -> None:
    text = render(skipped_run())
    assert text.startswith("# Performance")
    assert "skipped (--no-sandbox)" in text


def test_no_module_of_the_report_hard_codes_a_commit_id() -> None:
    assert COMMIT_ID.search('fixed in "63575ca"')  # the scan finds what it looks for
    found = {p.name: COMMIT_ID.findall(p.read_text()) for p in BENCH.glob("*.py")}
    assert {name: ids for name, ids in found.items() if ids} == {}


def test_the_report_is_split_into_small_modules() -> None:
    parts = (
        *("results", "measure", "analysis", "fmt", "plot", "tables", "document", "report"),
        *("limits", "before_after", "convergence"),
    )
    sizes = {name: len((BENCH / f"{name}.py").read_text().splitlines()) for name in parts}
    assert max(sizes.values()) <= 300, sizes


def test_a_regenerated_document_keeps_the_evidence_benchmark_section(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    section = "<!-- evidence-bench:start -->\nfigures\n<!-- evidence-bench:end -->"
    doc.write_text(f"old pass figures\n\n{section}\n", encoding="utf-8")
    out = keep_sections("new pass figures\n", doc)
    assert out.startswith("new pass figures")
    assert section in out


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |     _io
import time:      2000 |       2000 |       pydantic.fields
import time:      3000 |       5000 |     pydantic
import time:       500 |       5600 |   helper.server
"""


def test_importtime_lines_are_summed_per_top_level_package() -> None:
    found = import_breakdown("noise\n" + IMPORTTIME + "more noise\n")
    assert found == pytest.approx(
        {"_io": 0.0001, "pydantic": 0.005, "helper": 0.0005, "total": 0.0056}
    )
    assert import_breakdown("no importtime here") == {}
    assert medians([found, {"pydantic": 0.001, "total": 0.001}], top=1)["packages"] == (
        pytest.approx({"pydantic": 0.003, "other": 0.0003, "total": 0.0033})
    )


def full(median: float) -> dict[str, float]:
    return {"median": median, "min": median, "max": median, "n": 3}


def measured_run() -> Results:
    """A run with the sandbox parts the before/after table reads (figures made up)."""
    run = skipped_run()
    limit = {"median": 0.0001, "min": 0.0001, "max": 0.0002, "n": 3}
    helper = {
        "summary": {
            "status warm": full(0.002),
            "systemctl show": full(0.016),
            "status cold": full(0.120),
            "install-or-update-unit warm": full(0.002),
            "install-or-update-unit cold": full(0.120),
        }
    }
    run["sandbox"] = {
        "limits": {
            "summary": {
                "D-Bus Ping to PID 1": limit,
                "D-Bus GetUnit (loaded unit)": limit,
                "Unix-socket round trip (64 B echo)": limit,
                "python -I -S -c pass": {**limit, "median": 0.011},
            }
        },
        "helper_running": helper,
        "imports": {
            "helper": {
                "packages": {"pydantic": 0.05, "other": 0.01, "total": 0.06},
                "starts": 3,
                "modules": 40,
            },
            "agent": {"error": "no importtime lines from launchplane-agent"},
        },
    }
    return run


def test_before_after_puts_this_runs_figures_next_to_the_limits_of_the_same_run() -> None:
    table = {row[0]: row for row in rows(measured_run())}
    running = table["helper `status` warm, lane running"]
    assert running[1] == "7.3 … 10.3 ms"  # before, from the issue
    assert running[2] == "2.0 ms"  # now
    assert running[4] == "Unix-socket round trip + one GetUnit: 200 µs"
    ratio = table["`status` warm / `systemctl show`, running lane (same run)"]
    assert ratio[2] == "0.12"
    cold = table["helper `status` cold (socket activation)"]
    assert cold[2] == "120.0 ms"
    assert "`python -I -S -c pass`: 11.0 ms" in cold[4]
    assert table["one timer pass, 1 lane, whole process (host, fake units)"][2] == "—"
    text = render(measured_run())
    assert "| pydantic | 50.0 ms | no importtime lines from launchplane-agent |" in text
    assert "| D-Bus Ping to PID 1 | 100 µs | 100 µs … 200 µs | 3 |" in text
    assert "Regenerate (one line" in text
