"""Convergence: from `launchplane-agent apply` to a `completed` audit, split into phases.

    python -m bench.convergence [--runs 5] [--json F]                     (root)

In the `lp-bench` container (bench.sandbox: the project installed by tests/systemd/installed.py)
with the GitHub emulator inside serving the runner emulator's release, the agent is run the way
tests/systemd/test_agent_e2e.py runs it: `launchplane-agent --json apply --lane <example lane>`
as launchplane-agent, through the real socket-activated helper and real systemd. Each run
starts from nothing (no unit, drop-in, runner directory, GitHub registration or cached
archive), so every run is a first-time convergence including the download.

The wall time is taken in the container around the agent process (start-up included). The
phases come from the record itself: provider_evidence["steps"], each (step, seconds), as the
agent times them; "agent start-up, observe, plan, records" is what is left of the wall."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import load_window, machine, summary
from bench.sandbox import BenchHost, installed_host
from tests.emulators.runner.build import build as build_runner_archive
from tests.sandbox import Sandbox
from tests.systemd.installed import (
    DROPIN_DIR,
    LANE,
    PYTHON,
    RUNNER_CACHE,
    RUNNER_DIR,
    UNIT,
    GitHubInside,
    agent_argv,
    give_agent_the_token,
)

PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("token", ("fetch_registration_token",)),
    ("download", ("download_runner",)),
    ("install", ("install_runner",)),
    ("register", ("register_runner",)),
    ("unit start", ("install_or_update_unit", "daemon_reload", "enable_now")),
    ("online", ("wait_online",)),
    ("baseline", ("observe_post_and_baseline",)),
    ("stability window (the gates' second sample)", ("stability_window",)),
    ("observe again", ("observe_again",)),
)
OTHER = "agent start-up, observe, plan, records"
CONNECT = "online: the runner connecting"
DETECT = "online: GitHub has it → the agent sees it"
STABILITY = PHASES[-2][0]
OWN = "our own share (all but the runner connecting and the stability window)"
LIST = "actions/list-self-hosted-runners-for-repo"


# Run inside the container as root: times the agent process, prints its record.
TIMED_APPLY = r"""
import json, subprocess, sys, time
argv = json.loads(sys.stdin.read())
started = time.perf_counter()
done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
wall = time.perf_counter() - started
print(json.dumps({"wall": wall, "rc": done.returncode, "stdout": done.stdout,
                  "stderr": done.stderr[-4000:]}))
"""


def apply_argv(key: str) -> list[str]:
    """The agent as tests/systemd/test_agent_e2e.py runs it: as its user, its env, --json."""
    return agent_argv(
        "--json", "apply", "--lane", LANE, "--idempotency-key", key, "--confirm", f"apply {LANE}"
    )


def reset_lane(box: Sandbox, github: GitHubInside) -> None:
    """Nothing of the lane left: unit stopped and gone, directory, registration, cache."""
    box.sh(
        f"systemctl stop {UNIT} 2>/dev/null || true; systemctl disable {UNIT} 2>/dev/null || true; "
        f"rm -rf {DROPIN_DIR} {RUNNER_DIR} /var/cache/launchplane-agent/downloads "
        f"{RUNNER_CACHE}/*.tar.gz; systemctl daemon-reload; "
        f"systemctl reset-failed {UNIT} 2>/dev/null || true; "
        "systemctl reset-failed launchplane-helper.service launchplane-helper.socket || true; "
        "systemctl start launchplane-helper.socket"
    )
    for runner in github.runners():
        github.request("DELETE", f"/_emulator/runners/{runner['id']}", auth=False)


def phases_of(record: dict[str, Any], wall: float) -> dict[str, float]:
    steps = record.get("provider_evidence", {}).get("steps", [])
    seconds: dict[str, float] = {}
    for entry in steps:
        seconds[entry["step"]] = seconds.get(entry["step"], 0.0) + float(entry["seconds"])
    out = {name: sum(seconds.pop(s, 0.0) for s in names) for name, names in PHASES}
    for leftover, value in seconds.items():  # a step this table does not name yet
        out[leftover] = value
    out[OTHER] = max(0.0, wall - sum(out.values()))
    return out


def emulator_log(github: GitHubInside) -> list[dict[str, Any]]:
    status, log = github.request("GET", "/_emulator/requests", auth=False)
    return list(log) if status == 200 else []


def online_split(log: list[dict[str, Any]], waited: float) -> dict[str, float]:
    """wait_online split by the emulator's own log: from the listener's session (GitHub has
    it online) to verify's read that saw it (the agent's share), the rest the runner's."""
    created = [e["time"] for e in log if e["operation"] == "actions/session-create"]
    waits = [e["time"] for e in log if e["operation"] == LIST and "name=" in e["query"]]
    if not created or not waits:
        return {}
    lag = min(waited, max(0.0, waits[-1] - created[0]))
    return {CONNECT: waited - lag, DETECT: lag}


def one_run(box: Sandbox, github: GitHubInside, key: str) -> dict[str, Any]:
    reset_lane(box, github)
    logged = len(emulator_log(github))
    done = box.exec(PYTHON, "-I", "-c", TIMED_APPLY, input=json.dumps(apply_argv(key)), timeout=700)
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    try:
        (record,) = json.loads(outcome["stdout"])
    except (ValueError, TypeError):
        return {"ok": False, "rc": outcome["rc"], "error": outcome["stderr"] or outcome["stdout"]}
    phases = phases_of(record, outcome["wall"])
    split = online_split(emulator_log(github)[logged:], phases.get("online", 0.0))
    if split:
        split[OWN] = outcome["wall"] - phases.get(STABILITY, 0.0) - split[CONNECT]
    evidence = record.get("provider_evidence", {})
    result = {
        "ok": record["status"] == "completed",
        "rc": outcome["rc"],
        "status": record["status"],
        "error": record.get("error"),
        "shape": record["plan"]["shape"],
        "blockers": [f"{b['code']}: {b['message']}" for b in record["plan"]["blockers"]],
        "failed_gate": record.get("failed_gate"),
        "wall": outcome["wall"],
        "phases": phases,
        "split": split,
        "steps": evidence.get("steps", []),
        "github_requests": evidence.get("github_requests"),
        "online_wait": evidence.get("online_wait"),
    }
    return result


def cleanup(box: Sandbox) -> None:
    """Remove what the last run left (the lane, the emulator)."""
    github = GitHubInside(box)
    reset_lane(box, github)
    github.stop()


def measure(host: BenchHost, *, runs: int, leave_running: bool = False) -> dict[str, Any]:
    """`runs` convergences from nothing. With `leave_running`, a completed last run's lane
    (and the emulator) are left as they are, for measurements on a converged lane; then
    call `cleanup`."""
    box = host.installed.sandbox
    staging = host.scratch / "runner-release"
    archive, digest = build_runner_archive(staging)
    staging.chmod(0o755)
    archive.chmod(0o644)
    github = GitHubInside(box)
    github.stop()  # start() reuses a running emulator: this one must serve the release
    github.start(runner_tarball=f"/scratch/runner-release/{archive.name}")
    deadline = time.monotonic() + 30
    while not github.healthy():
        if time.monotonic() > deadline:
            raise RuntimeError("the GitHub emulator inside the container did not come up")
        time.sleep(0.2)
    give_agent_the_token(box, github)
    results: list[dict[str, Any]] = []
    try:
        with load_window() as load:
            for i in range(runs):
                results.append(one_run(box, github, f"bench-{time.time_ns()}-{i}"))
                if not results[-1]["ok"]:
                    break  # a failure is reported as it is; no point repeating it
    finally:
        if not (leave_running and results and results[-1]["ok"]):
            cleanup(box)
    good = [r for r in results if r["ok"]]
    names = [name for name, _ in PHASES] + [OTHER]
    for r in good:
        names += [n for n in r["phases"] if n not in names]
    return {
        "runs": results,
        "completed": len(good),
        "attempted": len(results),
        "archive_sha256": digest,
        "wall": summary([r["wall"] for r in good]),
        "phases": {n: summary([r["phases"].get(n, 0.0) for r in good]) for n in names},
        "split": {
            n: summary([r["split"][n] for r in good if n in r["split"]])
            for n in (CONNECT, DETECT, OWN)
            if any(n in r["split"] for r in good)
        },
        "load": load,
    }


def run(*, runs: int = 5) -> dict[str, Any]:
    with installed_host(lambda m: print(m, file=sys.stderr, flush=True)) as host:
        result = measure(host, runs=runs)
    result["machine"] = machine()
    return result


def print_table(result: dict[str, Any], file: Any = sys.stdout) -> None:
    print(
        f"# convergence: apply -> completed, {result['completed']}/{result['attempted']} runs "
        "completed (medians)",
        file=file,
    )
    if not result["completed"]:
        for r in result["runs"]:
            print(f"  run failed: rc={r['rc']} {r.get('status')} {r.get('error')}", file=file)
            for blocker in r.get("blockers", []):
                print(f"    blocker {blocker}", file=file)
        return
    print(f"{'total (agent process wall)':<40} {result['wall']['median']:7.3f} s", file=file)
    for name, s in [*result["phases"].items(), *result.get("split", {}).items()]:
        print(f"  {name:<38} {s['median']:7.3f} s  [{s['min']:.3f} .. {s['max']:.3f}]", file=file)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.convergence", description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path)
    ns = p.parse_args(argv)
    result = run(runs=ns.runs)
    if ns.json:
        ns.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print_table(result)
    return 0 if result["completed"] else 1


if __name__ == "__main__":
    sys.exit(main())
