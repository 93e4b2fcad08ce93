"""`make security`: the exposure score of every shipped service and `systemd-analyze verify`
of every shipped and rendered unit, offline, in a root laid out as the package installs it.

    python -m tests.package.security [--json]

Exposure: `systemd-analyze security --offline=yes` (systemd 252 here). Budgets: the helper
<= 1.0, the agent <= 1.5, the evidence service <= 2.0, a runner lane <= 3.0, scored as a
rendered instance of the template plus the helper's drop-in for the example lane
(`agent/examples/lanes.toml`), which is what runs; the bare template cannot start and is
printed for information.
Verify: stderr must be empty (its exit status is 0 even for unknown keys). Exit 1 if any
budget or verify fails, 2 if systemd-analyze is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from helper.contract.dropin import DROPIN_NAME, dropin_dir_name, render_dropin
from helper.contract.lanes import parse_lanes

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "units"
EXAMPLE_LANES = REPO / "agent" / "examples" / "lanes.toml"
VENV_BIN = "usr/lib/launchplane-runner-maintainer/venv/bin"
EVIDENCE_BIN = "usr/lib/launchplane-evidence/venv/bin"
HOST_UNITS = Path("/usr/lib/systemd/system")


@dataclass(frozen=True)
class Score:
    unit: str
    exposure: float | None
    budget: float | None  # None: printed for information only
    note: str

    @property
    def ok(self) -> bool:
        if self.budget is None:
            return True
        return self.exposure is not None and self.exposure <= self.budget


@dataclass(frozen=True)
class Verify:
    unit: str
    returncode: int
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.stderr == ""


def example_lane_name() -> str:
    return parse_lanes(EXAMPLE_LANES.read_text(encoding="utf-8")).lanes[0].lane_name


def build_root(base: Path) -> str:
    """The host's system units, ours as the package installs them, the executables they
    name, and the helper's rendered drop-in for the example lane. Returns the lane name."""
    system = base / "usr/lib/systemd/system"
    shutil.copytree(HOST_UNITS, system, symlinks=True)
    for unit in sorted(UNITS.iterdir()):
        if unit.is_file():
            shutil.copy(unit, system / unit.name)
    lane = parse_lanes(EXAMPLE_LANES.read_text(encoding="utf-8")).lanes[0]
    executables = [
        base / VENV_BIN / "launchplane-helper",
        base / VENV_BIN / "launchplane-agent",
        base / EVIDENCE_BIN / "launchplane-evidence",
        base / lane.runner_directory.lstrip("/") / "run.sh",
        base / "bin/false",
    ]
    for exe in executables:
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    dropin = base / "etc/systemd/system" / dropin_dir_name(lane.lane_name) / DROPIN_NAME
    dropin.parent.mkdir(parents=True)
    dropin.write_text(render_dropin(lane), encoding="utf-8")
    return lane.lane_name


def analyze(analyzer: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [analyzer, f"--root={root}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def exposure(analyzer: str, root: Path, unit: str) -> float | None:
    out = analyze(analyzer, root, "security", "--offline=yes", "--no-pager", unit).stdout
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)", out)
    return float(match.group(1)) if match else None


def measure(analyzer: str, root: Path, lane: str) -> tuple[list[Score], list[Verify]]:
    instance = f"launchplane-runner@{lane}.service"
    scores = [
        Score("launchplane-helper.service", None, 1.0, "root helper"),
        Score("launchplane-agent.service", None, 1.5, "agent pass"),
        Score("launchplane-evidence.service", None, 2.0, "evidence service (launchplane-evidence)"),
        Score(instance, None, 3.0, "runner lane: template + rendered drop-in"),
        Score("launchplane-runner@x.service", None, None, "template alone (cannot start)"),
    ]
    scores = [Score(s.unit, exposure(analyzer, root, s.unit), s.budget, s.note) for s in scores]
    units = [*sorted(u.name for u in UNITS.iterdir() if u.is_file()), instance]
    verifies = []
    for unit in units:
        done = analyze(analyzer, root, "verify", "--no-pager", unit)
        verifies.append(Verify(unit, done.returncode, done.stderr))
    return scores, verifies


def report(scores: Sequence[Score], verifies: Sequence[Verify]) -> str:
    width = max(len(name) for name in [*(s.unit for s in scores), *(v.unit for v in verifies)])
    lines = [f"{'unit':<{width}}  exposure  budget  result", "-" * (width + 26)]
    for s in scores:
        value = "n/a" if s.exposure is None else f"{s.exposure:.1f}"
        budget = "-" if s.budget is None else f"<= {s.budget:.1f}"
        verdict = ("ok" if s.ok else "OVER BUDGET") if s.budget is not None else "info"
        lines.append(f"{s.unit:<{width}}  {value:>8}  {budget:>6}  {verdict:<11} {s.note}")
    lines += ["", f"{'systemd-analyze verify':<{width}}  result", "-" * (width + 10)]
    for v in verifies:
        verdict = "ok (stderr empty)" if v.ok else f"FAILED (exit {v.returncode})"
        lines.append(f"{v.unit:<{width}}  {verdict}")
        lines += [f"    {line}" for line in v.stderr.splitlines()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.package.security")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    analyzer = shutil.which("systemd-analyze")
    if analyzer is None:
        print(
            "systemd-analyze is missing: `make sandbox-prepare` installs it "
            "(or apt-get install --no-install-recommends systemd)",
            file=sys.stderr,
        )
        return 2
    version = subprocess.run(
        [analyzer, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.splitlines()[:1]
    with tempfile.TemporaryDirectory(prefix="lp-security-") as tmp:
        root = Path(tmp)
        lane = build_root(root)
        scores, verifies = measure(analyzer, root, lane)
    ok = all(s.ok for s in scores) and all(v.ok for v in verifies)
    if args.json:
        print(
            json.dumps(
                {
                    "systemd": version[0] if version else "",
                    "ok": ok,
                    "exposure": [{**asdict(s), "ok": s.ok} for s in scores],
                    "verify": [{**asdict(v), "ok": v.ok} for v in verifies],
                },
                indent=2,
            )
        )
    else:
        print(f"{version[0] if version else 'systemd-analyze'} (offline, root as installed)\n")
        print(report(scores, verifies))
        print("\nall within budget, verify silent" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
