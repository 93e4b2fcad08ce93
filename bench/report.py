"""`make bench`: run the three benchmarks, print a table, write docs/performance.{md,png}.

    python -m bench [--quick] [--no-sandbox] [--wait-quiet S] [--from-json F]

Raw results go to build/bench/results.json; `--from-json` redraws the document and the plot
from such a file without measuring again. Every part is bounded in time; the sandbox parts
need root and are reported as skipped (with the reason) otherwise."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import pass_cost
from bench.document import render
from bench.measure import measure
from bench.plot import plot
from bench.results import DOC, OUT_JSON, PLOT, load_results, save_results
from bench.tables import print_summary

KEPT_SECTIONS = (("<!-- evidence-bench:start -->", "<!-- evidence-bench:end -->"),)
"""Sections that other benchmarks (bench/evidence.py) own: carried over, never dropped."""


def keep_sections(text: str, doc: Path) -> str:
    try:
        old = doc.read_text(encoding="utf-8")
    except OSError:
        return text
    for start, end in KEPT_SECTIONS:
        if start in old and end in old and start not in text:
            text = text.rstrip("\n") + "\n\n" + old[old.index(start) : old.index(end) + len(end)]
            text += "\n"
    return text


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
        results = load_results(ns.from_json)
    else:
        results = measure(ns)
        save_results(results, ns.json)
    print_summary(results)
    plot(results, ns.plot)
    ns.doc.write_text(keep_sections(render(results), ns.doc), encoding="utf-8")
    print(f"\nwrote {ns.doc} and {ns.plot}" + ("" if ns.from_json else f"; raw: {ns.json}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
