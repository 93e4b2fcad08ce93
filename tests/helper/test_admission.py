"""Admission under attack (issue 13 item 3), over real sockets with real uids: a flood by a
uid that is not the agent, idle connections, and more parallel agent requests than slots.
Every loop is bounded and stops by itself; no assertion depends on timing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helper.contract.client import call
from helper.contract.protocol import Request
from tests.helper.conftest import AGENT_UID, LANE, OTHER_UID, World, serve_while
from tests.helper.drivers import AGENT_DRIVER
from tests.helper.test_server import SYSTEM_PYTHON

REPO = str(Path(__file__).resolve().parents[2])
pytestmark = pytest.mark.skipif(
    SYSTEM_PYTHON is None or os.geteuid() != 0, reason="needs root and /usr/bin/python3"
)

# The agent's side runs tests/helper/drivers.py's AGENT_DRIVER: as root long enough to import
# the client, then as the agent's uid (LP_DRIVER_UID).

# A local user that may connect (here: any uid; on a host, a member of the socket's group).
# Opens IDLE connections that send nothing, says so, then connects and hangs up in a loop
# (at most FLOOD times) until its stdin closes. Prints how many connects it made.
FLOODER = """
import select, socket, sys
name, idle_n, flood_n = "\\0" + sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        s.connect(name)
    except BlockingIOError:
        s.close(); return None
    return s
idle = [s for s in (connect() for _ in range(idle_n)) if s]
print(f"idle-open {len(idle)}", flush=True)
made = 0
for _ in range(flood_n):
    if select.select([sys.stdin], [], [], 0)[0]:
        break
    s = connect()
    if s:
        made += 1; s.close()
print(f"flooded {made}", flush=True)
sys.stdin.read()
"""


DRIVER_PRELUDE = f"import sys; sys.path.insert(0, {REPO!r})\n"


def agent_driver(mode: str, name: str, *counts: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-I", "-c", DRIVER_PRELUDE + AGENT_DRIVER, mode]
        + [str(count) for count in counts],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={
            "LANE": LANE,
            "PATH": "/usr/bin:/bin",
            "LP_DRIVER_SOCKET": f"@{name}",
            "LP_DRIVER_TIMEOUT": "60",
            "LP_DRIVER_UID": str(AGENT_UID),
            "LP_DRIVER_HANDSHAKE": "1",
        },
    )


def flooder(name: str, idle: int, flood: int) -> subprocess.Popen[str]:
    assert SYSTEM_PYTHON is not None
    return subprocess.Popen(
        [SYSTEM_PYTHON, "-I", "-c", FLOODER, name, str(idle), str(flood)],
        user=OTHER_UID,
        group=OTHER_UID,
        extra_groups=[],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return dict(json.loads(out.splitlines()[-1]))


def test_a_flood_by_another_local_user_does_not_starve_the_agent(world: World) -> None:
    async def client(name: str) -> tuple[dict[str, Any], list[str]]:
        flood = flooder(name, 50, 20000)
        assert flood.stdout is not None
        ready = await asyncio.to_thread(flood.stdout.readline)
        assert ready.startswith("idle-open")
        served = await asyncio.to_thread(finish, agent_driver("serial", name, 20))
        assert flood.stdin is not None
        flood.stdin.close()
        lines = await asyncio.to_thread(flood.stdout.read)
        flood.wait(timeout=60)
        return served, [ready, *lines.splitlines()]

    (served, flood_out), _ = serve_while(world, client)
    assert served["served"] == [True] * 20
    refused = [line for line in world.audit_lines() if line["peer_uid"] == OTHER_UID]
    assert refused
    assert {line["code"] for line in refused} == {"peer_refused"}
    made = int(flood_out[-1].split()[1])
    assert made > 0 or int(flood_out[0].split()[1]) > 0  # the flood did reach the socket


def test_thirty_parallel_agent_requests_are_all_served(world: World) -> None:
    async def client(name: str) -> dict[str, Any]:
        return await asyncio.to_thread(finish, agent_driver("parallel", name, 30))

    served, _ = serve_while(world, client)
    assert served["served"] == [True] * 30
    agent_lines = [line for line in world.audit_lines() if line["peer_uid"] == AGENT_UID]
    assert len(agent_lines) == 30


def test_idle_agent_connections_are_closed_and_lock_out_nobody(world: World) -> None:
    status = Request(version=1, verb="status", lane=LANE, dry_run=True)

    async def client(name: str) -> tuple[dict[str, Any], bool]:
        driver = agent_driver("idle", name, 50, 20)
        assert driver.stdout is not None
        assert driver.stdin is not None
        assert (await asyncio.to_thread(driver.stdout.readline)).startswith("idle-open")
        root_ok = (await asyncio.to_thread(call, "\0" + name, status, 60)).ok  # reserved slots
        driver.stdin.write("go\n")
        driver.stdin.flush()
        return await asyncio.to_thread(finish, driver), root_ok

    (served, root_ok), _ = serve_while(world, client)
    assert root_ok
    assert served["served"] == [True] * 20
    assert served["idle_answers"] == ["frame_timeout"] * 50  # answered and closed, not reset
