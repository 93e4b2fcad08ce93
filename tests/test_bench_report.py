"""The benchmark report: its modules render a run (here one whose parts were all skipped), and
no commit id is written into its code (the document names changes by their titles)."""

from __future__ import annotations

import re
from pathlib import Path

from bench.document import render
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
    parts = ("results", "measure", "analysis", "fmt", "plot", "tables", "document", "report")
    sizes = {name: len((BENCH / f"{name}.py").read_text().splitlines()) for name in parts}
    assert max(sizes.values()) <= 300, sizes


def test_a_regenerated_document_keeps_the_evidence_benchmark_section(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    section = "<!-- evidence-bench:start -->\nfigures\n<!-- evidence-bench:end -->"
    doc.write_text(f"old pass figures\n\n{section}\n", encoding="utf-8")
    out = keep_sections("new pass figures\n", doc)
    assert out.startswith("new pass figures")
    assert section in out
