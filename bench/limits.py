"""Physical limits and start-up imports, measured in the sandbox in the same run as the figures.

    python -m bench.limits [--runs 30] [--json F]                         (root)

LIMITS runs inside the `lp-bench` container with the installed venv's python and times, itself:
one D-Bus round trip to PID 1 (`org.freedesktop.DBus.Peer.Ping` to org.freedesktop.systemd1;
and `GetUnit` of a loaded unit), one Unix-socket round trip (64 bytes to a forked echo
process and back), and whole-process starts: `/bin/true`, `python -c pass`,
`python -I -S -c pass` (fork/exec and exit included, as any start pays them).

`imports()` is the `python -X importtime` breakdown (PYTHONPROFILEIMPORTTIME=1) of the two
starts that matter: the helper's cold start as socket activation runs it (a runtime drop-in
sets the variable; one `status` call starts it; its stderr lands in the journal), and
`launchplane-agent reconcile --due` as the timer runs it, each self time summed per top-level
package; medians of `runs` starts."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import load_window, median, summary
from bench.sandbox import installed_host
from tests.sandbox import Sandbox
from tests.systemd.installed import AGENT_USER, LANE, PYTHON, agent_argv

LIMITS = r"""
import asyncio, json, os, socket, subprocess, sys, time
from dbus_fast import BusType, Message
from dbus_fast.aio import MessageBus

spec = json.loads(sys.stdin.read())
n = spec["runs"]
SD = ("org.freedesktop.systemd1", "/org/freedesktop/systemd1")

async def dbus():
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    out = {"D-Bus Ping to PID 1": [], "D-Bus GetUnit (loaded unit)": []}
    calls = (
        ("D-Bus Ping to PID 1", "org.freedesktop.DBus.Peer", "Ping", "", []),
        ("D-Bus GetUnit (loaded unit)", "org.freedesktop.systemd1.Manager", "GetUnit", "s",
         ["launchplane-helper.socket"]),
    )
    for _ in range(n + 1):  # the first of each is not counted (connection warm-up)
        for name, interface, member, signature, body in calls:
            message = Message(destination=SD[0], path=SD[1], interface=interface,
                              member=member, signature=signature, body=body)
            started = time.perf_counter()
            reply = await bus.call(message)
            out[name].append(time.perf_counter() - started)
            if reply.message_type.name != "METHOD_RETURN":
                raise SystemExit(f"{member}: {reply.body}")
    bus.disconnect()
    return {k: v[1:] for k, v in out.items()}

def unix_echo():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        ours.close()
        while data := theirs.recv(4096):
            theirs.sendall(data)
        os._exit(0)
    theirs.close()
    frame, times = b"x" * 64, []
    for _ in range(n + 1):
        started = time.perf_counter()
        ours.sendall(frame)
        got = b""
        while len(got) < len(frame):
            got += ours.recv(4096)
        times.append(time.perf_counter() - started)
    ours.close()
    os.waitpid(pid, 0)
    return times[1:]

def start(*argv):
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - started

series = asyncio.run(dbus())
series["Unix-socket round trip (64 B echo)"] = unix_echo()
starts = {
    "process start: /bin/true": ("/bin/true",),
    "python -c pass": (sys.executable, "-c", "pass"),
    "python -I -S -c pass": (sys.executable, "-I", "-S", "-c", "pass"),
}
for name in starts:
    series[name] = []
for _ in range(max(3, n // 3)):
    for name, argv in starts.items():
        series[name].append(start(*argv))
print(json.dumps({"series": series}))
"""

IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s+)(\S+)")
HELPER = "launchplane-helper.service"
HELPER_DROPIN = f"/run/systemd/system/{HELPER}.d/90-bench-importtime.conf"
STATUS_CALL = (
    "setpriv",
    f"--reuid={AGENT_USER}",
    f"--regid={AGENT_USER}",
    "--init-groups",
    "--",
    PYTHON,
    "-I",
    "-c",
    "from helper.contract.client import call\n"
    "from helper.contract.protocol import DEFAULT_SOCKET, PROTOCOL_VERSION, Request\n"
    f"r = Request.model_validate({{'version': PROTOCOL_VERSION, 'verb': 'status', "
    f"'lane': '{LANE}', 'dry_run': True}})\n"
    "assert call(DEFAULT_SOCKET, r, 60.0).ok",
)


def import_breakdown(text: str) -> dict[str, float]:
    """Seconds of import self time per top-level package, and `total`, from importtime lines."""
    per: dict[str, float] = defaultdict(float)
    for match in IMPORT_LINE.finditer(text):
        per[match.group(4).split(".")[0]] += int(match.group(1)) / 1e6
    if per:
        per["total"] = sum(per.values())
    return dict(per)


def medians(samples: list[dict[str, float]], top: int = 12) -> dict[str, Any]:
    """Per package, the median over the starts (0 where a start did not import it); the
    `top` largest, `other` for the rest, and `total`."""
    names = {name for sample in samples for name in sample} - {"total"}
    per = {name: median([s.get(name, 0.0) for s in samples]) for name in names}
    ranked = sorted(per.items(), key=lambda item: -item[1])
    out = dict(ranked[:top])
    out["other"] = sum(v for _, v in ranked[top:])
    out["total"] = median([s.get("total", 0.0) for s in samples])
    return {"packages": out, "starts": len(samples), "modules": len(names)}


def helper_imports(box: Sandbox, runs: int) -> dict[str, Any]:
    """Cold helper starts with PYTHONPROFILEIMPORTTIME=1 (a runtime drop-in, removed after)."""
    box.write_file(HELPER_DROPIN, "[Service]\nEnvironment=PYTHONPROFILEIMPORTTIME=1\n")
    box.exec("systemctl", "daemon-reload")
    samples: list[dict[str, float]] = []
    try:
        for _ in range(runs):
            box.exec("systemctl", "stop", HELPER)
            box.exec("systemctl", "reset-failed", HELPER, "launchplane-helper.socket", check=False)
            box.exec(*STATUS_CALL, timeout=120)  # socket activation starts the helper
            invocation = box.show(HELPER, "InvocationID")["InvocationID"]
            journal = box.exec(
                "journalctl", "-q", "-o", "cat", f"_SYSTEMD_INVOCATION_ID={invocation}", check=False
            ).stdout
            if found := import_breakdown(journal):
                samples.append(found)
    finally:
        box.exec("rm", "-f", HELPER_DROPIN)
        box.exec("systemctl", "daemon-reload")
        box.exec("systemctl", "stop", HELPER, check=False)
    if not samples:
        return {"error": "no importtime lines in the helper's journal"}
    return medians(samples)


def agent_imports(box: Sandbox, runs: int) -> dict[str, Any]:
    """`launchplane-agent --json reconcile --due` as the timer runs it, importtime on."""
    samples: list[dict[str, float]] = []
    walls: list[float] = []
    argv = agent_argv("--json", "reconcile", "--due")
    at = argv.index("env") + 1
    argv[at:at] = ["PYTHONPROFILEIMPORTTIME=1"]
    for _ in range(runs):
        started = time.perf_counter()
        done = box.exec(*argv, check=False, timeout=300)
        walls.append(time.perf_counter() - started)
        if found := import_breakdown(done.stderr):
            samples.append(found)
    if not samples:
        return {"error": "no importtime lines from launchplane-agent"}
    result = medians(samples)
    result["process_wall_with_importtime"] = summary(walls)
    return result


def measure(box: Sandbox, *, runs: int = 30) -> dict[str, Any]:
    """The limits, `runs` of each (process starts: a third as many), timed inside."""
    with load_window() as load:
        done = box.exec(PYTHON, "-I", "-c", LIMITS, input=json.dumps({"runs": runs}), timeout=300)
    series: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])["series"]
    return {"summary": {name: summary(values) for name, values in series.items()}, "load": load}


def imports(box: Sandbox, *, runs: int = 3) -> dict[str, Any]:
    """Both import breakdowns, each guarded: a failure is reported, the other stands."""
    result: dict[str, Any] = {}
    for key, fn in (("helper", helper_imports), ("agent", agent_imports)):
        try:
            with load_window() as window:
                result[key] = fn(box, runs)
            result[key]["load"] = window
        except Exception as exc:  # reported, the other figures stand
            result[key] = {"error": f"{type(exc).__name__}: {exc}"}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--json", type=Path)
    ns = p.parse_args(argv)
    with installed_host(lambda m: print(m, file=sys.stderr, flush=True)) as host:
        result = measure(host.installed.sandbox, runs=ns.runs)
        result["imports"] = imports(host.installed.sandbox)
    if ns.json:
        ns.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    for name, s in result["summary"].items():
        print(f"{name:<40} median {s['median'] * 1000:8.3f} ms  n={s['n']}")
    for key, found in result["imports"].items():
        print(key, json.dumps(found.get("packages", found), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
