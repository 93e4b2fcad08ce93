"""Issue 13 under real systemd: attacks on the installed helper (its socket, its answers,
its steps), each written as the attack. Every loop is bounded and ends by itself."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.helper.drivers import AGENT_DRIVER
from tests.sandbox import Sandbox
from tests.systemd.installed import (
    AGENT_USER,
    HELPER_AUDIT_LOG,
    LANE,
    PYTHON,
    RUNNER_DIR,
    InstalledHost,
)
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

SOCKET_PATH = "/run/launchplane/helper.sock"
SOCKET_UNIT = "launchplane-helper.socket"
INTRUDER = "lp-test-intruder"

# As the agent: `serial N` requests one after another, `parallel N` at once, or `idle N M`:

# A member of the agent's group: N connects that send nothing (kept open), then M
# connect-and-hang-up; prints what each kind of connect got.
FLOODER = r"""
import collections, socket, sys
path, idle_n, flood_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen, keep = collections.Counter(), []
for i in range(idle_n + flood_n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        seen["connected"] += 1
    except OSError as exc:
        seen[exc.__class__.__name__] += 1
    if i < idle_n:
        keep.append(s)
    else:
        s.close()
print(dict(seen))
"""


def as_user(user: str) -> list[str]:
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]


def drive_agent(box: Sandbox, *args: str) -> dict[str, Any]:
    done = box.exec(
        *as_user(AGENT_USER),
        PYTHON,
        "-I",
        "-c",
        AGENT_DRIVER,
        *args,
        env={"LANE": LANE, "HOME": "/"},
        timeout=600,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def audit_lines(box: Sandbox) -> list[dict[str, Any]]:
    """The helper's audit log; none yet (a fresh container) is no line."""
    text = box.exec("cat", "--", HELPER_AUDIT_LOG, check=False).stdout
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def intruder(installed: InstalledHost) -> str:
    """A local user in the agent's group that is not the agent."""
    installed.sandbox.sh(
        'id -u "$1" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir / '
        '--shell /usr/sbin/nologin -G "$2" "$1"',
        INTRUDER,
        AGENT_USER,
    )
    return INTRUDER


# --- admission -----------------------------------------------------------------------------


def test_a_member_of_the_agents_group_cannot_connect_at_all(
    installed: InstalledHost, intruder: str
) -> None:
    box = installed.sandbox
    assert box.exec("stat", "-c", "%a %U %G", SOCKET_PATH).stdout.split() == [
        "600",
        AGENT_USER,
        AGENT_USER,
    ]
    assert AGENT_USER in box.exec("id", "-nG", intruder).stdout.split()
    answer = installed.helper.call("status", user=intruder)
    assert "PermissionError" in answer["unreachable"]


def test_a_flood_by_a_group_member_leaves_every_agent_request_served(
    installed: InstalledHost, intruder: str
) -> None:
    box = installed.sandbox
    flood = box.exec(
        "sh",
        "-c",
        # the flood runs while the agent's 20 requests are made; both end by themselves
        f'{" ".join(as_user(intruder))} /usr/bin/python3 -I -c "$1" {SOCKET_PATH} 50 3000 '
        '> /tmp/flood.out & agent_out="$($2 "$3" -I -c "$4" serial 20)"; wait; '
        'cat /tmp/flood.out; echo "$agent_out"',
        "sh",
        FLOODER,
        " ".join(as_user(AGENT_USER)) + " env LANE=" + LANE + " HOME=/",
        PYTHON,
        AGENT_DRIVER,
        timeout=600,
    )
    flood_out, agent_out = flood.stdout.strip().splitlines()[-2:]
    assert json.loads(agent_out)["served"] == [True] * 20
    assert "connected" not in flood_out  # every attempt met EACCES
    assert "PermissionError" in flood_out


def test_thirty_parallel_agent_requests_are_all_served(installed: InstalledHost) -> None:
    before = len(audit_lines(installed.sandbox))
    served = drive_agent(installed.sandbox, "parallel", "30")
    assert served["served"] == [True] * 30
    assert len(audit_lines(installed.sandbox)) - before == 30


def test_idle_agent_connections_are_closed_and_root_is_still_served(
    installed: InstalledHost,
) -> None:
    box = installed.sandbox
    done = box.exec(
        "sh",
        "-c",
        '$1 "$2" -I -c "$3" idle 50 20 > /tmp/idle.out & '
        'root_out="$("$2" -I -c "$4" serial 3)"; wait; cat /tmp/idle.out; echo "$root_out"',
        "sh",
        " ".join(as_user(AGENT_USER)) + " env LANE=" + LANE + " HOME=/",
        PYTHON,
        AGENT_DRIVER,
        AGENT_DRIVER,
        env={"LANE": LANE},
        timeout=600,
    )
    idle_out, root_out = done.stdout.strip().splitlines()[-2:]
    assert json.loads(root_out)["served"] == [True] * 3
    idle = json.loads(idle_out)
    assert idle["served"] == [True] * 20
    assert idle["idle_answers"] == ["frame_timeout"] * 50


# --- per-request redaction -------------------------------------------------------------------


def test_a_token_sent_by_the_agent_blanks_nothing_in_roots_next_status(
    installed: InstalledHost,
) -> None:
    helper = installed.helper
    poison = RUNNER_DIR  # a 16+ character "token" that every status answer contains
    own = helper.call("register-runner", token=poison)
    assert poison not in json.dumps(own)  # masked in that request's own answer
    status = helper.ok("status", user=None)
    rendered = json.dumps(status)
    assert "***" not in rendered
    assert json.dumps(RUNNER_DIR) in rendered


# --- confined steps --------------------------------------------------------------------------

# Starts a transient unit with exactly the properties the helper sends for a step (only the
# program is /bin/sleep, so that it stays up to be measured), prints its name.
LIVE_STEP = r"""
import asyncio, dataclasses, os, sys
from dbus_fast import Variant
from helper.config import HelperConfig
from helper.contract.lanes import load_lanes
from helper.steps import extract_spec, register_spec
from helper.contract.systemd import DbusSystemd
from helper.contract.transient import transient_properties
declared = load_lanes("/etc/launchplane/lanes.toml")
lane = declared.lanes_named(sys.argv[2])[0]
if sys.argv[1] == "register":
    spec = register_spec(lane, declared.policy, HelperConfig(), "0" * 64)
else:
    spec = extract_spec(lane, "0" * 64, HelperConfig())
root = lane.registration_root
spec = dataclasses.replace(
    spec, argv=("/bin/sleep", "300"), working_directory=root, read_write_paths=(root,)
)
async def main():
    async with DbusSystemd.connect() as systemd:
        props = [[n, Variant(s, v)] for n, s, v in transient_properties(spec)]
        fd = os.open("/dev/null", os.O_RDONLY)
        await systemd._call(
            "StartTransientUnit", "ssa(sv)a(sa(sv))", [spec.name, "fail", props, []],
            unix_fds=[fd],
        )
asyncio.run(main())
print(spec.name)
"""


def exposure(box: Sandbox, unit: str) -> float:
    out = box.exec("systemd-analyze", "security", "--no-pager", unit).stdout
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert found, out
    return float(found.group(1))


@pytest.mark.parametrize("step", ["register", "extract"])
def test_a_live_step_unit_is_exposed_at_most_3_0(installed: InstalledHost, step: str) -> None:
    box = installed.sandbox
    unit = box.exec(PYTHON, "-I", "-c", LIVE_STEP, step, LANE).stdout.strip()
    try:
        assert box.show(unit, "ActiveState")["ActiveState"] == "activating"
        props = box.show(unit, "CapabilityBoundingSet", "User", "RestrictNamespaces")
        assert props["CapabilityBoundingSet"] == ""
        assert props["RestrictNamespaces"] == "yes"
        pid = box.show(unit, "MainPID")["MainPID"]
        status = box.read_file(f"/proc/{pid}/status")
        assert re.search(r"^CapBnd:\s+0+$", status, re.M), status
        assert re.search(r"^Seccomp:\s+2$", status, re.M), status
        score = exposure(box, unit)
        print(f"{step} step unit exposure: {score}")
        assert score <= 3.0
    finally:
        box.systemctl("stop", unit, check=False)
        box.systemctl("reset-failed", unit, check=False)


# --- start limits ----------------------------------------------------------------------------

CRASH_DROPIN = "/run/systemd/system/launchplane-helper.service.d/60-crash.conf"
AGENT_STANDIN = "/run/systemd/system/launchplane-agent.service.d/60-test.conf"


def test_a_crash_looping_helper_hits_its_limit_and_recovers_by_itself(
    installed: InstalledHost,
) -> None:
    """A helper that dies on every start fails the socket at its start limit (requests fail
    closed); once it is healthy again, the next agent pass (here: the start the timer makes,
    of an agent whose pass is /bin/true) brings the socket back through Requires=, and the
    helper answers again. Nobody runs reset-failed."""
    box = installed.sandbox
    box.systemctl("stop", "launchplane-helper.service", check=False)
    box.write_file(CRASH_DROPIN, "[Service]\nExecStart=\nExecStart=/bin/false\n")
    box.write_file(AGENT_STANDIN, "[Service]\nExecStart=\nExecStart=/bin/true\n")
    box.systemctl("daemon-reload")
    try:
        assert installed.helper.call("status", timeout=10).get("unreachable")
        wait_for(
            lambda: box.show(SOCKET_UNIT, "ActiveState")["ActiveState"] == "failed",
            timeout=60,
            interval=0.5,
            what="the socket to fail at the helper's start limit",
        )
        result = box.show(SOCKET_UNIT, "Result")["Result"]
        assert result in {"service-start-limit-hit", "trigger-limit-hit"}, result
        assert "FileNotFoundError" in installed.helper.call("status")["unreachable"]
    finally:
        box.exec("rm", "-f", CRASH_DROPIN)
        box.systemctl("daemon-reload")

    def pass_and_status() -> bool:
        box.systemctl("start", "launchplane-agent.service", check=False)  # what the timer does
        return installed.helper.call("status", timeout=10).get("ok") is True

    try:
        wait_for(pass_and_status, timeout=120, interval=3, what="the helper to answer again")
    finally:
        box.exec("rm", "-f", AGENT_STANDIN)
        box.systemctl("daemon-reload")
    assert box.show(SOCKET_UNIT, "ActiveState")["ActiveState"] == "active"
