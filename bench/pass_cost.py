"""Cost of one reconcile pass vs the number of declared lanes: requests, rate limit, time, RSS.

    python -m bench.pass_cost [--units fake|dbus] [--scales 1:1,10:5,50:10,200:20] [--json F]

For each scale (lanes:repositories) this process runs a GitHubEmulator (in-process HTTP server
on 127.0.0.1, validate=False) holding one runner per lane, online and labelled as declared,
writes a lanes.toml, and gives every lane a runner directory with its `.runner`. The agent runs
in fresh child processes (bench/pass_worker.py, started with `python -I`), wired by
`agent.wiring.build_agent` as in production (GitHubClient with its ETag cache on disk,
FilesystemAuditStore, real local-directory observation and baseline); lanes are
`apply = false`, so a pass is observe -> plan -> `planned` record, and the helper is never
called. Units come from a fake observer (`--units fake`: pure agent cost) or from systemd
over D-Bus (`--units dbus`: the production DbusUnitObserver, inside the sandbox container).

* worker "fresh": one process; pass 1 is cold (no ETag cache, empty audit store), then
  `--steady` more passes in the same process (steady: 304s and no new records);
* worker "restart": `--restarts` more processes, each doing one pass the way the timer does
  it (a new process that loads the ETag cache and the audit store from disk).

Peak RSS is the child's VmHWM (its ru_maxrss would carry this parent's over across exec). CPU
time is the child's own plus its children's (the docker probes); the emulator lives here, in
the parent, so neither its CPU nor its memory is counted."""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    last_json_line,
    load_window,
    loglog_slope,
    machine,
    runtime_python,
    summary,
)
from tests.emulators.github_api import GitHubEmulator

DEFAULT_SCALES = ((1, 1), (10, 5), (50, 10), (200, 20))
PRODUCT = "bench"
ORG = "bench-org"
RUNNER_VERSION = "2.329.0"


# --- the world a scale runs against (parent side) ------------------------------------------


def lane_names(lanes: int) -> list[str]:
    return [f"bench-lane-{i:03d}" for i in range(lanes)]


def repository_of(index: int, repos: int) -> str:
    return f"{ORG}/repo-{index % repos:02d}"


def labels_for(host: str) -> list[str]:
    return ["self-hosted", "launchplane", "launchplane-managed", host, PRODUCT]


def default_service_user() -> str:
    for name in ("launchplane-runner", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("neither launchplane-runner nor nobody exists")


def lanes_toml(
    lanes: int, repos: int, *, host: str, root: str, user: str, web_url: str, apply: bool = False
) -> str:
    def quoted(items: Sequence[str]) -> str:
        return "[" + ", ".join(json.dumps(x) for x in items) + "]"

    repositories = sorted({repository_of(i, repos) for i in range(lanes)})
    out = [
        "[policy]",
        f"allowed_repositories = {quoted(repositories)}",
        f"approved_hosts = {quoted([host])}",
        f"allowed_registration_roots = {quoted([root])}",
        f"allowed_service_users = {quoted([user])}",
        f"github_web_url = {json.dumps(web_url)}",
    ]
    for i, name in enumerate(lane_names(lanes)):
        out += [
            "",
            "[[lanes]]",
            f"lane_name = {json.dumps(name)}",
            f"repository = {json.dumps(repository_of(i, repos))}",
            f"host_name = {json.dumps(host)}",
            f"registration_root = {json.dumps(root)}",
            f"service_user = {json.dumps(user)}",
            f"labels = {quoted(labels_for(host))}",
            f"product = {json.dumps(PRODUCT)}",
            f"apply = {'true' if apply else 'false'}",
        ]
    return "\n".join(out) + "\n"


def make_runner_directory(
    root: Path, lane: str, *, runner_id: int, url: str, uid: int, gid: int
) -> None:
    """What config.sh leaves: `.runner` (JSON with a BOM), run.sh, _work; owned by the user."""
    directory = root / lane
    (directory / "_work").mkdir(parents=True)
    runner = {"agentId": runner_id, "agentName": lane, "gitHubUrl": url, "poolId": 1}
    (directory / ".runner").write_bytes(b"\xef\xbb\xbf" + json.dumps(runner).encode())
    (directory / "run.sh").write_text("#!/bin/bash\nexit 0\n", encoding="utf-8")
    for path in (directory, directory / "_work", directory / ".runner", directory / "run.sh"):
        os.chown(path, uid, gid)


# --- the child: one agent, timed passes ---------------------------------------------------


# --- the parent: one scale -----------------------------------------------------------------


# -I: no environment, no cwd on sys.path; the agent comes from the interpreter's own
# site-packages (the installed package inside the container), bench/ and tests/ from REPO.
BOOT = (
    "import sys, time; t = time.perf_counter(); sys.path.append(sys.argv[1]); "
    "from bench import pass_worker; pass_worker.main(t)"
)


def _child(spec: dict[str, Any], python: str, timeout: float) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    done = subprocess.run(
        [python, "-I", "-c", BOOT, str(REPO)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"worker failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = last_json_line(done.stdout)
    return result, wall


def measure_scale(
    lanes: int,
    repos: int,
    *,
    units: str,
    steady: int,
    restarts: int,
    bus_address: str | None = None,
    python: str = sys.executable,
    timeout: float = 1800.0,
) -> dict[str, Any]:
    """One scale: a fresh emulator, lanes.toml and runner directories; one "fresh" child
    (cold + `steady` passes) and `restarts` one-pass children."""
    host = socket.gethostname()
    user = default_service_user()
    entry = pwd.getpwnam(user)
    work = Path(tempfile.mkdtemp(prefix=f"lp-bench-{lanes}-"))
    try:
        work.chmod(0o755)
        root = work / "runners"
        root.mkdir(mode=0o755)
        credentials = work / "credentials"
        credentials.mkdir(mode=0o700)
        token = "ghp_bench" + os.urandom(16).hex()
        (credentials / "github-token").write_text(token + "\n", encoding="utf-8")
        (credentials / "github-token").chmod(0o600)  # the agent refuses a token others can read
        with GitHubEmulator(validate=False) as gh:
            gh.state.add_pat(token)
            for i, name in enumerate(lane_names(lanes)):
                repo = repository_of(i, repos)
                gh.state.add_repository(repo)
                runner = gh.state.add_runner(
                    repo, name, labels=labels_for(host), status="online", version=RUNNER_VERSION
                )
                url = f"{gh.web_url}/{repo}"
                make_runner_directory(
                    root, name, runner_id=runner.id, url=url, uid=entry.pw_uid, gid=entry.pw_gid
                )
            (work / "lanes.toml").write_text(
                lanes_toml(lanes, repos, host=host, root=str(root), user=user, web_url=gh.web_url),
                encoding="utf-8",
            )
            spec = {
                "workdir": str(work),
                "api_url": gh.api_url,
                "web_url": gh.web_url,
                "credentials": str(credentials),
                "units": units,
                "bus_address": bus_address,
                "passes": 1 + steady,
            }
            fresh, fresh_wall = _child(spec, python, timeout)
            restart_runs = []
            for _ in range(restarts):
                result, wall = _child({**spec, "passes": 1}, python, timeout)
                restart_runs.append({**result, "process_wall": wall})
            units_charged = sum(b.used for b in gh.state.world.buckets.values())
            requests_seen = len(gh.requests())
        return {
            "lanes": lanes,
            "repos": repos,
            "units": units,
            "service_user": user,
            "fresh": {**fresh, "process_wall": fresh_wall},
            "restarts": restart_runs,
            "emulator": {"requests": requests_seen, "units_charged": units_charged},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _median_of(passes: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    return summary([float(p[key]) for p in passes])


def digest(scale: dict[str, Any]) -> dict[str, Any]:
    """The figures the report shows for one scale (medians over the steady passes)."""
    fresh = scale["fresh"]
    cold, steady = fresh["passes"][0], fresh["passes"][1:]
    restarts = scale["restarts"]
    names = sorted({k for p in steady for k in p["parts"]})
    parts = {n: summary([p["parts"].get(n, 0.0) for p in steady])["median"] for n in names}
    systemd = [p["systemd_cpu"] for p in steady if p["systemd_cpu"] is not None]
    return {
        "lanes": scale["lanes"],
        "repos": scale["repos"],
        "cold": {
            k: cold[k]
            for k in ("requests", "rate_limit_used", "records_written", "wall", "cpu", "parts")
        }
        | {"children_cpu": cold["children_cpu"]},
        "steady": {
            k: _median_of(steady, k)
            for k in (
                "requests",
                "not_modified",
                "rate_limit_used",
                "records_written",
                "wall",
                "cpu",
                "children_cpu",
            )
        }
        | {"parts": parts, "systemd_cpu": summary(systemd) if systemd else None},
        "timer_pass": {  # a new process per pass, as the timer runs it
            "process_wall": summary([r["process_wall"] for r in restarts]),
            "pass_wall": summary([r["passes"][0]["wall"] for r in restarts]),
            "cpu_total": summary(
                [
                    r["startup_cpu"] + r["passes"][0]["cpu"] + r["passes"][0]["children_cpu"]
                    for r in restarts
                ]
            ),
            "imports_wall": summary([r["imports_wall"] for r in restarts]),
            "requests": summary([r["passes"][0]["requests"] for r in restarts]),
            "not_modified": summary([r["passes"][0]["not_modified"] for r in restarts]),
            "rate_limit_used": summary([r["passes"][0]["rate_limit_used"] for r in restarts]),
            "peak_rss_mib": summary([r["peak_rss_kib"] / 1024 for r in restarts]),
        },
        "peak_rss_mib": max([fresh["peak_rss_kib"], *(r["peak_rss_kib"] for r in restarts)]) / 1024,
        "unit_sample": fresh["unit_sample"],
        "plans": cold["plans"],
        "emulator": scale["emulator"],
        "steady_runs": len(steady),
        "restart_runs": len(restarts),
    }


def growth(digests: Sequence[dict[str, Any]], key: str = "wall") -> dict[str, float]:
    """Exponent b of steady pass `key` ~ lanes^b over the scales with >= 10 lanes, and the
    last two scales' time ratio against their lane ratio."""
    big = [d for d in digests if d["lanes"] >= 10]
    xs = [float(d["lanes"]) for d in big]
    ys = [float(d["steady"][key]["median"]) for d in big]
    out = {"exponent": loglog_slope(xs, ys)}
    if len(big) >= 2:
        a, b = big[-2], big[-1]
        ta, tb = a["steady"][key]["median"], b["steady"][key]["median"]
        out["time_ratio"] = tb / ta if ta else float("nan")
        out["lane_ratio"] = b["lanes"] / a["lanes"]
        out["ms_per_lane"] = 1000 * tb / b["lanes"]
    return out


def run(
    scales: Sequence[tuple[int, int]],
    *,
    units: str = "fake",
    steady: int = 5,
    restarts: int = 5,
    bus_address: str | None = None,
    python: str = sys.executable,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    results = []
    with load_window() as load:
        for lanes, repos in scales:
            progress(f"pass cost: {lanes} lanes / {repos} repos, units={units}")
            results.append(
                measure_scale(
                    lanes,
                    repos,
                    units=units,
                    steady=steady,
                    restarts=restarts,
                    bus_address=bus_address,
                    python=python,
                )
            )
    digests = [digest(r) for r in results]
    return {
        "machine": machine(),
        "load": load,
        "units": units,
        "python": python,
        "host": socket.gethostname(),
        "docker_cli": shutil.which("docker"),
        "scales": digests,
        "growth": growth(digests),
        "growth_cpu": growth(digests, "cpu"),
        "raw": results,
    }


def print_table(result: dict[str, Any], file: Any = sys.stdout) -> None:
    print(f"# pass cost (units={result['units']}; medians)", file=file)
    for d in result["scales"]:
        s, t = d["steady"], d["timer_pass"]
        print(
            f"{d['lanes']:>4} lanes/{d['repos']:>2} repos | cold {d['cold']['requests']:>3} req "
            f"{d['cold']['rate_limit_used']:>3} units {d['cold']['wall']:7.3f}s | steady "
            f"{s['requests']['median']:>3.0f} req ({s['not_modified']['median']:.0f} 304) "
            f"{s['rate_limit_used']['median']:.0f} units {s['wall']['median']:7.3f}s wall "
            f"{s['cpu']['median'] + s['children_cpu']['median']:7.3f}s cpu | timer pass "
            f"{t['process_wall']['median']:6.3f}s | peak RSS {d['peak_rss_mib']:5.1f} MiB",
            file=file,
        )
    print(f"growth of the steady pass: {result['growth']}", file=file)


def _parse_scales(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        lanes, _, repos = item.partition(":")
        out.append((int(lanes), int(repos or 1)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m bench.pass_cost", description=__doc__)
    p.add_argument("--units", choices=["fake", "dbus"], default="fake")
    p.add_argument("--scales", type=_parse_scales, default=list(DEFAULT_SCALES))
    p.add_argument("--steady", type=int, default=5, help="steady passes after the cold one")
    p.add_argument("--restarts", type=int, default=5, help="one-pass processes (timer-style)")
    p.add_argument("--bus-address", help="D-Bus address for --units dbus (default: system bus)")
    p.add_argument(
        "--python",
        help="interpreter for the agent children (default: a runtime-only venv from uv.lock)",
    )
    p.add_argument("--json", type=Path, help="write the results here")
    ns = p.parse_args(args)
    result = run(
        ns.scales,
        units=ns.units,
        steady=ns.steady,
        restarts=ns.restarts,
        bus_address=ns.bus_address,
        python=ns.python or runtime_python(),
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )
    if ns.json:
        ns.json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())


INSIDE = """
import json, sys
sys.path += [sys.argv[1], sys.argv[2]]
from bench.pass_cost import run
spec = json.loads(sys.stdin.read())
scales = [tuple(s) for s in spec.pop("scales")]
print(json.dumps(run(scales, **spec), default=str))
"""


def run_in_sandbox(
    box: Any,
    scales: Sequence[tuple[int, int]],
    *,
    units: str,
    steady: int,
    restarts: int,
    python: str,
    site: str,
    timeout: float = 3600.0,
) -> dict[str, Any]:
    """`run` inside the sandbox container, as root, with the installed venv's `python` (the
    agent imported from the installed package; bench/ and tests/ from /src; the emulator's
    extra packages from `site`). Units over the container's own system bus for "dbus"."""
    spec = {"scales": scales, "units": units, "steady": steady, "restarts": restarts}
    with load_window() as load:  # measured here: inside, our container is not told apart
        done = box.exec(
            python, "-I", "-c", INSIDE, "/src", site, input=json.dumps(spec), timeout=timeout
        )
    result: dict[str, Any] = last_json_line(done.stdout)
    result["load"] = load
    return result
