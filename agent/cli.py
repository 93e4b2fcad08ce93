"""`launchplane-agent`: plan (dry-run, the default) and the operator's other verbs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from agent.contracts import (
    LanesFile,
    PlanPolicy,
    RunnerLaneMaintainerObservedState,
    RunnerLaneMaintainerPlan,
)
from agent.planner import plan
from helper.errors import ConfigError, LaunchplaneError
from helper.identifiers import lane_name_findings
from helper.lanes import DEFAULT_LANES_FILE, load_lanes

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3


def example_path(name: str) -> Path:
    """A file bundled with the package under agent/examples/."""
    return Path(str(resources.files("agent") / "examples" / name))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="launchplane-agent",
        description="Keep self-hosted runner lanes supervised by systemd; dry-run by default.",
        epilog="exit codes: 0 ready/ok, 1 failed, 2 usage or config error, 3 blocked",
    )
    p.add_argument("--lanes", default=DEFAULT_LANES_FILE, help="lanes.toml path")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="command")
    pl = sub.add_parser("plan", help="dry-run: show what a pass would do (default)")
    pl.add_argument("--lane", help="only this lane")
    pl.add_argument(
        "--observation",
        help="replay a recorded observation (JSON) instead of observing; planned as of its time",
    )
    pl.add_argument("--example", action="store_true", help="use the bundled example files")
    return p


def _render_plan(result: RunnerLaneMaintainerPlan) -> str:
    lines = [
        f"lane    {result.lane_name}",
        f"status  {result.status}",
        f"action  {result.action.value}",
        f"shape   {result.shape.value}",
    ]
    lines += [f"blocker {b.code}: {b.message}" for b in result.blockers]
    lines += [f"next    {s}" for s in result.next_steps]
    lines += [f"step {i + 1:>2} {s.value}" for i, s in enumerate(result.steps)]
    return "\n".join(lines)


def _select(declared: LanesFile, lane: str | None) -> list[str]:
    if lane is None:
        return list(dict.fromkeys(d.lane_name for d in declared.lanes))
    if lane_name_findings("--lane", lane):
        raise ConfigError("--lane", [("--lane", "unsafe lane name")])
    if not declared.lanes_named(lane):
        raise ConfigError("--lane", [("--lane", f"{lane!r} is not declared")])
    return [lane]


def cmd_plan(args: argparse.Namespace) -> int:
    lanes_path = example_path("lanes.toml") if args.example else Path(args.lanes)
    observation = args.observation or (
        str(example_path("observation.json")) if args.example else None
    )
    declared = load_lanes(lanes_path)
    if observation is None:
        print(
            "live observation is not available in this build; pass --observation", file=sys.stderr
        )
        return EXIT_USAGE
    observed = RunnerLaneMaintainerObservedState.model_validate_json(
        Path(observation).read_text(encoding="utf-8")
    )
    results = []
    for name in _select(declared, args.lane):
        desired = declared.lanes_named(name)[0]
        if observed.lane_name != name:
            continue
        results.append(plan(declared, desired, observed, PlanPolicy(), observed.observed_at))
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in results], indent=2))
    else:
        print(f"replaying observation recorded at {observed.observed_at.isoformat()}")
        print("\n\n".join(_render_plan(r) for r in results))
    return EXIT_BLOCKED if any(r.status == "blocked" for r in results) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        args = _parser().parse_args([*(argv or sys.argv[1:]), "plan"])
    try:
        return cmd_plan(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except LaunchplaneError as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
