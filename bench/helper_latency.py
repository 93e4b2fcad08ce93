"""Helper verb latency, warm and cold, side by side with systemctl, inside the sandbox.

    python -m bench.helper_latency [--warm 30] [--cold 10] [--json F]     (root)

Boots the `lp-bench` container with the project installed (bench.sandbox, which uses
tests/systemd/installed.py), then runs CLIENT inside it with the installed venv's python: one
process that times every operation itself, so its own start-up is not counted.

Counted for a helper verb: connect to /run/launchplane/helper.sock, send the frame, the
helper's work (peer check, lanes.toml load and validation, the verb, its audit line with
fsync), the answer, and parsing it (helper.contract.client.call). Calls are made as the agent user
(effective uid/gid switched around each call; SO_PEERCRED sees launchplane-agent).
  warm: the helper is already running (one untimed call first);
  cold: `systemctl stop launchplane-helper.service` and `systemctl reset-failed` (untimed:
        the unit's default start limit, 5 starts in 10 s, would otherwise fail the socket
        during the series), then the timed call starts it through socket activation
        (process start, imports, READY=1, then the verb).
Counted for `systemctl show <unit>` and `systemctl daemon-reload`: the whole command, as an
operator runs it (fork/exec of systemctl, its D-Bus calls, exit). The agent itself reads
units in-process over D-Bus; that is timed too (`dbus GetAll in-process`).
Every series is interleaved round by round, so drift in machine load hits all alike."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.common import load_window, machine, summary
from bench.sandbox import installed_host
from tests.systemd.installed import AGENT_USER, LANE, PYTHON, UNIT

CLIENT = r"""
import asyncio, json, os, pwd, subprocess, sys, time
from helper.contract.client import call
from helper.contract.protocol import DEFAULT_SOCKET, PROTOCOL_VERSION, Request
from helper.contract.systemd import DbusSystemd

spec = json.loads(sys.stdin.read())
agent = pwd.getpwnam(spec["agent_user"])
lane, unit = spec["lane"], spec["unit"]
HELPER = "launchplane-helper.service"
SOCKET = "launchplane-helper.socket"

def request(verb, apply):
    return Request.model_validate(
        {"version": PROTOCOL_VERSION, "verb": verb, "lane": lane, "dry_run": not apply}
    )

REQUESTS = {
    "status": request("status", False),
    "install-or-update-unit": request("install-or-update-unit", True),
}

def helper(verb):
    os.setegid(agent.pw_gid)
    os.seteuid(agent.pw_uid)
    try:
        started = time.perf_counter()
        response = call(DEFAULT_SOCKET, REQUESTS[verb], 60.0)
        elapsed = time.perf_counter() - started
    finally:
        os.seteuid(0)
        os.setegid(0)
    if not response.ok:
        raise SystemExit(f"{verb}: {response.model_dump_json()}")
    if verb == "install-or-update-unit" and response.result.get("changed"):
        raise SystemExit("install-or-update-unit changed the drop-in: not the unchanged case")
    return elapsed

def command(*argv):
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=60)
    return time.perf_counter() - started

async def _props(n):
    out = []
    async with DbusSystemd.connect() as systemd:
        for _ in range(n):
            started = time.perf_counter()
            await systemd.unit_properties(unit)
            out.append(time.perf_counter() - started)
    return out

def helper_active():
    return subprocess.run(
        ["systemctl", "is-active", "--quiet", HELPER], check=False
    ).returncode == 0

series = {k: [] for k in (
    "status warm", "install-or-update-unit warm", "systemctl show", "systemctl daemon-reload",
    "status cold", "install-or-update-unit cold",
)}
# Set-up: the drop-in current, so every timed install-or-update-unit is the unchanged case.
os.setegid(agent.pw_gid); os.seteuid(agent.pw_uid)
call(DEFAULT_SOCKET, REQUESTS["install-or-update-unit"], 60.0)
os.seteuid(0); os.setegid(0)
helper("status")  # warm it
for i in range(spec["warm"]):
    series["status warm"].append(helper("status"))
    series["install-or-update-unit warm"].append(helper("install-or-update-unit"))
    series["systemctl show"].append(command("systemctl", "show", unit))
    if i < spec["reloads"]:
        series["systemctl daemon-reload"].append(command("systemctl", "daemon-reload"))
series["dbus GetAll in-process"] = asyncio.run(_props(spec["warm"]))
cold_checks = []
for _ in range(spec["cold"]):
    for verb in ("status", "install-or-update-unit"):
        subprocess.run(["systemctl", "stop", HELPER], check=True, timeout=60)
        # The service's default start limit (5 starts in 10 s) would fail the socket after a
        # few cold calls in a row; reset-failed flushes that counter (not timed).
        subprocess.run(["systemctl", "reset-failed", HELPER, SOCKET], check=False, timeout=60)
        cold_checks.append(not helper_active())
        series[f"{verb} cold"].append(helper(verb))
        cold_checks.append(helper_active())
print(json.dumps({"series": series, "cold_checks_ok": all(cold_checks)}))
"""


def helper_server_durations(box: Any, count: int) -> dict[str, list[float]]:
    """duration_ms the helper itself logged for the last `count` requests, per verb."""
    text = box.read_file("/var/log/launchplane/helper.jsonl")
    out: dict[str, list[float]] = {}
    for line in text.splitlines()[-count:]:
        entry = json.loads(line)
        if entry.get("ok") and entry.get("duration_ms") is not None:
            out.setdefault(entry["verb"], []).append(float(entry["duration_ms"]) / 1000)
    return out


def measure(box: Any, *, warm: int, cold: int, reloads: int) -> dict[str, Any]:
    spec = {
        "agent_user": AGENT_USER,
        "lane": LANE,
        "unit": UNIT,
        "warm": warm,
        "cold": cold,
        "reloads": reloads,
    }
    with load_window() as load:
        done = box.exec(
            PYTHON, "-I", "-c", CLIENT, input=json.dumps(spec), timeout=60 + 5 * (warm + cold)
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    total = 2 * warm + 2 * cold + 2
    result["server"] = {
        verb: summary(values) for verb, values in helper_server_durations(box, total).items()
    }
    result["summary"] = {name: summary(values) for name, values in result["series"].items()}
    result["load"] = load
    result["systemd_in_container"] = box.exec("systemctl", "--version").stdout.splitlines()[0]
    result["python_in_container"] = box.exec(PYTHON, "-V").stdout.strip()
    return result


def run(*, warm: int = 30, cold: int = 10, reloads: int = 10) -> dict[str, Any]:
    with installed_host(lambda m: print(m, file=sys.stderr, flush=True)) as host:
        result = measure(host.installed.sandbox, warm=warm, cold=cold, reloads=reloads)
    result["machine"] = machine()
    return result


def print_table(result: dict[str, Any], file: Any = sys.stdout) -> None:
    print("# helper verb latency in the sandbox (client-side round trip)", file=file)
    for name, s in result["summary"].items():
        print(
            f"{name:<30} median {s['median'] * 1000:8.2f} ms  "
            f"[{s['min'] * 1000:.2f} .. {s['max'] * 1000:.2f}]  n={s['n']}",
            file=file,
        )
    for verb, s in result["server"].items():
        print(
            f"  helper's own duration_ms, {verb:<24} median {s['median'] * 1000:6.2f} ms", file=file
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.helper_latency", description=__doc__)
    p.add_argument("--warm", type=int, default=30)
    p.add_argument("--cold", type=int, default=10)
    p.add_argument("--reloads", type=int, default=10)
    p.add_argument("--json", type=Path)
    ns = p.parse_args(argv)
    result = run(warm=ns.warm, cold=ns.cold, reloads=ns.reloads)
    if ns.json:
        ns.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
