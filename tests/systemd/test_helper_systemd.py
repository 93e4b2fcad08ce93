"""The helper under real systemd, installed as the package installs it (issue 5, part 3).

Everything goes through the real helper socket, as the agent user, with the protocol client:
the helper is socket-activated by PID 1 under its shipped, hardened unit; the runner lane is
the runner emulator's run.sh under the shipped template and the helper's drop-in.

Test-only change to the real units: a runtime drop-in
/run/systemd/system/launchplane-runner@<lane>.service.d/60-test.conf with `RestartSec=1`
(the template's 15 s would make the restart test slow). It lives in /run, apart from the
helper's /etc drop-in directory, and is removed before the "nothing left behind" checks.

The tests in this module run in file order and share one lane (module fixture `lane`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.sandbox import Sandbox
from tests.systemd.installed import (
    AGENT_USER,
    DROPIN,
    DROPIN_DIR,
    HELPER_AUDIT_LOG,
    LANE,
    REGISTRATION_ROOT,
    REPOSITORY,
    RUNNER_DIR,
    SERVICE_USER,
    UNIT,
    GitHubInside,
    InstalledHost,
)
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

HELPER = "launchplane-helper.service"
SOCKET = "launchplane-helper.socket"
TEST_DROPIN_DIR = f"/run/systemd/system/{UNIT}.d"
TEST_DROPIN = f"{TEST_DROPIN_DIR}/60-test.conf"
WANTS_LINK = f"/etc/systemd/system/multi-user.target.wants/{UNIT}"


# --- reading the container ---------------------------------------------------------------


def proc_status(sandbox: Sandbox, pid: int) -> dict[str, str]:
    text = sandbox.read_file(f"/proc/{pid}/status")
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def running_run_sh(sandbox: Sandbox, pid: int) -> dict[str, str]:
    """/proc/PID/status once PID has exec'd the lane's run.sh. For Type=simple systemd
    reports the MainPID (and ends the start job) right after fork(), before the child has
    switched to User= and exec'd; until then it is still a root copy of PID 1."""

    def execd() -> bool:
        cmdline = sandbox.read_file(f"/proc/{pid}/cmdline").split("\0")
        return cmdline[:2] == ["/bin/bash", f"{RUNNER_DIR}/run.sh"]

    wait_for(execd, timeout=10, interval=0.05, what=f"pid {pid} to exec run.sh")
    return proc_status(sandbox, pid)


def uid_of(sandbox: Sandbox, user: str) -> int:
    return int(sandbox.exec("id", "-u", user).stdout)


def unit_processes(sandbox: Sandbox, unit: str) -> list[tuple[int, str]]:
    """systemd's own view of the unit's cgroup: (pid, command line) of every process."""
    done = sandbox.exec(
        "busctl",
        "--json=short",
        "call",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "GetUnitProcesses",
        "s",
        unit,
        check=False,
    )
    if done.returncode != 0:  # not loaded (anymore): no cgroup
        return []
    rows = json.loads(done.stdout)["data"][0]
    return [(int(pid), str(cmdline)) for _, pid, cmdline in rows]


def processes_of(sandbox: Sandbox, user: str) -> list[str]:
    done = sandbox.exec("ps", "-u", user, "-o", "pid=,args=", check=False)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def reload_stamp(sandbox: Sandbox) -> str:
    """Changes with every daemon-reload (the Manager's UnitsLoadTimestampMonotonic)."""
    return sandbox.exec(
        "systemctl", "show", "--value", "-p", "UnitsLoadTimestampMonotonic"
    ).stdout.strip()


def file_identity(sandbox: Sandbox, path: str) -> str:
    """inode, mtime (ns), ctime (ns) and size of a file, without following links."""
    return sandbox.exec("stat", "-c", "%i %.9Y %.9Z %s", "--", path).stdout.strip()


def exists(sandbox: Sandbox, path: str) -> bool:
    """Whether anything (a dangling symlink included) is at path."""
    return sandbox.sh('test -e "$1" || test -L "$1"', path, check=False).returncode == 0


def audit_lines(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sandbox.read_file(HELPER_AUDIT_LOG).splitlines()]


def _best_effort_cleanup(box: Sandbox) -> None:
    """Whatever a failed test left: the unit, its drop-ins and the lane directory."""
    box.systemctl("kill", "--kill-who=all", "--signal=SIGKILL", UNIT, check=False)
    box.systemctl("disable", "--now", UNIT, check=False)
    box.exec("rm", "-rf", DROPIN_DIR, TEST_DROPIN_DIR, RUNNER_DIR, check=False)
    box.systemctl("daemon-reload", check=False)
    box.systemctl("reset-failed", UNIT, check=False)


@pytest.fixture(scope="module", autouse=True)
def _clean_lane(installed: InstalledHost) -> Iterator[None]:
    """The lane starts and ends this module absent (other modules share the container)."""
    _best_effort_cleanup(installed.sandbox)
    yield
    _best_effort_cleanup(installed.sandbox)


# --- the helper itself -------------------------------------------------------------------


def test_the_helper_is_socket_activated_and_runs_without_capabilities(
    installed: InstalledHost,
) -> None:
    box = installed.sandbox
    box.systemctl("stop", HELPER, check=False)  # an earlier module may have woken it
    socket_state = box.show(SOCKET, "ActiveState", "SubState", "UnitFileState", "Triggers")
    assert socket_state == {
        "ActiveState": "active",
        "SubState": "listening",
        "UnitFileState": "enabled",
        "Triggers": HELPER,
    }
    box.systemctl("stop", HELPER)  # whatever ran before: from here only the socket starts it
    assert box.show(HELPER, "ActiveState")["ActiveState"] == "inactive"
    assert box.exec("stat", "-c", "%a %U %G", "/run/launchplane/helper.sock").stdout.split() == [
        "600",
        AGENT_USER,
        AGENT_USER,
    ]

    stamp = reload_stamp(box)
    status = installed.helper.ok("status")  # as the agent user: a connection, nothing else
    assert status["unit"] == UNIT
    assert status["service_uid"] == uid_of(box, SERVICE_USER)

    helper = box.show(HELPER, "ActiveState", "SubState", "MainPID", "TriggeredBy", "User")
    assert helper["ActiveState"] == "active", helper
    assert helper["TriggeredBy"] == SOCKET
    pid = int(helper["MainPID"])
    assert pid > 0
    status_of = proc_status(box, pid)
    assert status_of["Uid"].split() == ["0"] * 4
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status_of[cap], 16) == 0, (cap, status_of[cap])
    assert status_of["NoNewPrivs"] == "1"
    assert status_of["Seccomp"] == "2"
    environ = box.read_file(f"/proc/{pid}/environ").split("\0")
    assert "LISTEN_FDS=1" in environ
    assert f"LISTEN_FDNAMES={SOCKET}" in environ
    assert (
        box.read_file(f"/proc/{pid}/cmdline")
        .split("\0")[1]
        .endswith("/venv/bin/launchplane-helper")
    )

    # A D-Bus call that changes PID 1's state, with that capability set: Manager.Reload.
    assert installed.helper.ok("daemon-reload", apply=True)["changed"] is True
    assert reload_stamp(box) != stamp
    assert box.show(HELPER, "MainPID")["MainPID"] == str(pid)  # the same activation served it
    last = audit_lines(box)[-1]
    assert (last["verb"], last["ok"], last["peer_uid"]) == (
        "daemon-reload",
        True,
        uid_of(box, AGENT_USER),
    )


def test_a_uid_that_is_not_the_agent_cannot_connect(installed: InstalledHost) -> None:
    """The socket is the agent's, 0600 (a group member: tests/systemd/test_hostile_helper.py)."""
    assert installed.helper.call("status", user="daemon").get("unreachable")


# --- a hand-written unit is not ours -------------------------------------------------------

HANDWRITTEN = f"""\
# Written by hand: no X-Launchplane-Lane= / X-Launchplane-Hash= marks.
[Service]
User={SERVICE_USER}
ExecStart=
ExecStart=/bin/sleep infinity
"""


def test_remove_unit_refuses_a_handwritten_dropin_and_changes_nothing(
    installed: InstalledHost,
) -> None:
    box = installed.sandbox
    box.write_file(DROPIN, HANDWRITTEN)
    try:
        box.systemctl("daemon-reload")
        box.systemctl("enable", "--now", UNIT)
        before = box.show(UNIT, "ActiveState", "MainPID", "UnitFileState", "DropInPaths")
        assert before["ActiveState"] == "active"
        identity = file_identity(box, DROPIN)
        stamp = reload_stamp(box)

        for verb in ("remove-unit", "stop", "disable", "restart"):
            error = installed.helper.refused(verb, apply=True)
            assert error["code"] == "not_owned", (verb, error)

        assert box.read_file(DROPIN) == HANDWRITTEN
        assert file_identity(box, DROPIN) == identity
        assert box.show(UNIT, *before) == before
        assert exists(box, WANTS_LINK)
        assert reload_stamp(box) == stamp
        assert [line["code"] for line in audit_lines(box)[-4:]] == ["not_owned"] * 4
    finally:
        box.systemctl("disable", "--now", UNIT, check=False)
        box.exec("rm", "-rf", DROPIN_DIR)
        box.systemctl("daemon-reload")
        box.systemctl("reset-failed", UNIT, check=False)


# --- one lane through its whole life ------------------------------------------------------


@dataclass
class Lane:
    """The module's lane, brought up through the helper by the `lane` fixture."""

    installed: InstalledHost
    github: GitHubInside
    archive: str
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def box(self) -> Sandbox:
        return self.installed.sandbox

    def apply(self, verb: str, **kwargs: Any) -> dict[str, Any]:
        result = self.installed.helper.ok(verb, apply=True, **kwargs)
        self.results[verb] = result
        return result

    def main_pid(self) -> int:
        return int(self.box.show(UNIT, "MainPID")["MainPID"])

    def service_uid(self) -> int:
        return uid_of(self.box, SERVICE_USER)

    def orphans(self) -> list[tuple[int, str]]:
        """Processes in the unit's cgroup that the current run.sh did not start (read in that
        order, so a short-lived child that already exited does not count)."""
        in_cgroup = unit_processes(self.box, UNIT)
        main = self.main_pid()
        children: dict[int, list[int]] = {}
        alive: set[int] = set()
        for row in self.box.exec("ps", "-e", "-o", "pid=,ppid=").stdout.splitlines():
            if row.strip():
                child, parent = (int(x) for x in row.split())
                children.setdefault(parent, []).append(child)
                alive.add(child)
        tree, todo = set(), [main]
        while todo:
            current = todo.pop()
            tree.add(current)
            todo += children.get(current, [])
        return [(pid, cmd) for pid, cmd in in_cgroup if pid in alive and pid not in tree]

    def end_orphans(self) -> None:
        """Stop what a killed run.sh left in the cgroup (KillMode=process keeps it running).
        SIGTERM, as a stop would: the orphaned listener closes its GitHub session."""
        pids = [str(pid) for pid, _ in self.orphans()]
        if not pids:
            return
        self.box.exec("kill", "-TERM", *pids, check=False)
        try:
            wait_for(lambda: not self.orphans(), timeout=10, what="the orphans to end")
        finally:
            left = [str(pid) for pid, _ in self.orphans()]
            if left:
                self.box.exec("kill", "-KILL", *left, check=False)

    def github_runner(self) -> dict[str, Any] | None:
        named = [r for r in self.github.runners() if r["name"] == LANE]
        assert len(named) <= 1, named
        return named[0] if named else None


@pytest.fixture(scope="module")
def lane(
    installed: InstalledHost, github_inside: GitHubInside, runner_archive: str
) -> Iterator[Lane]:
    """install-runner -> register-runner -> install-or-update-unit -> daemon-reload ->
    enable-now, all through the helper as the agent user; the runner emulator's tarball comes
    from the agent's cache, the registration token from the GitHub emulator."""
    box = installed.sandbox
    it = Lane(installed, github_inside, runner_archive)
    for runner in github_inside.runners():  # a runner of this name left by another module
        if runner["name"] == LANE:
            github_inside.request("DELETE", f"/_emulator/runners/{runner['id']}", auth=False)
    try:
        it.apply("install-runner", archive_sha256=runner_archive)
        it.apply("register-runner", token=github_inside.registration_token())
        box.write_file(TEST_DROPIN, "[Service]\nRestartSec=1\n")
        it.apply("install-or-update-unit")
        it.apply("daemon-reload")
        it.apply("enable-now")
        yield it
    finally:
        _best_effort_cleanup(box)


def test_enable_now_runs_run_sh_as_the_service_user_in_its_own_cgroup(lane: Lane) -> None:
    box = lane.box
    for verb in ("install-runner", "register-runner", "install-or-update-unit", "enable-now"):
        assert lane.results[verb]["changed"] is True, verb
    state = lane.results["enable-now"]["unit_state"]
    assert (state["active_state"], state["unit_file_state"]) == ("active", "enabled")

    props = box.show(UNIT, "ActiveState", "SubState", "MainPID", "ControlGroup", "DropInPaths")
    assert (props["ActiveState"], props["SubState"]) == ("active", "running")
    assert props["DropInPaths"].split() == [DROPIN, TEST_DROPIN]
    pid = int(props["MainPID"])
    uid = str(lane.service_uid())
    assert running_run_sh(box, pid)["Uid"].split() == [uid] * 4
    cgroup = props["ControlGroup"]
    assert cgroup.endswith(f"/{UNIT}")
    assert f"0::{cgroup}" in box.read_file(f"/proc/{pid}/cgroup").splitlines()
    assert pid in {p for p, _ in unit_processes(box, UNIT)}

    # run.sh's own children (the emulated Runner.Listener) are in the same cgroup, same user.
    listener = wait_for(
        lambda: [p for p, cmd in unit_processes(box, UNIT) if "bin/Runner.Listener run" in cmd],
        timeout=10,
        what="the listener to start",
    )
    assert proc_status(box, listener[0])["Uid"].split() == [uid] * 4
    assert box.exec("readlink", f"/proc/{listener[0]}/cwd").stdout.strip() == RUNNER_DIR


def test_the_runner_is_online_at_github_with_the_lane_labels(lane: Lane) -> None:
    runner = wait_for(
        lambda: (r := lane.github_runner()) and r["status"] == "online" and r,
        timeout=30,
        what="the runner to be online",
    )
    labels = {label["name"].lower() for label in runner["labels"]}
    assert {"self-hosted", "launchplane", "launchplane-managed", "chris-testing"} <= labels
    registered = json.loads(
        lane.box.read_file(f"{RUNNER_DIR}/.runner").encode().decode("utf-8-sig")
    )
    assert registered["agentName"] == LANE


def test_a_second_install_or_update_unit_writes_nothing_and_reloads_nothing(lane: Lane) -> None:
    box = lane.box
    identity = file_identity(box, DROPIN)
    content = box.read_file(DROPIN)
    stamp = reload_stamp(box)
    result = lane.installed.helper.ok("install-or-update-unit", apply=True)
    assert result["changed"] is False
    assert result["daemon_reload_needed"] is False
    assert result["hash_before"] == result["hash_after"]
    assert [a["status"] for a in result["actions"]] == ["skipped"]
    assert file_identity(box, DROPIN) == identity
    assert box.read_file(DROPIN) == content
    assert reload_stamp(box) == stamp
    assert box.show(UNIT, "NeedDaemonReload")["NeedDaemonReload"] == "no"
    last = audit_lines(box)[-1]
    assert (last["verb"], last["changed"]) == ("install-or-update-unit", False)
    assert last["unit_hash_before"] == last["unit_hash_after"]


def _kill_main_and_wait_for_restart(lane: Lane) -> tuple[int, int]:
    """SIGKILL the MainPID; returns (the new MainPID, NRestarts) once systemd restarted it."""
    box = lane.box
    before = box.show(UNIT, "MainPID", "NRestarts")
    old = int(before["MainPID"])
    restarts = int(before["NRestarts"])
    box.exec("kill", "-KILL", str(old))

    def restarted() -> tuple[int, int] | None:
        now = box.show(UNIT, "MainPID", "NRestarts", "ActiveState", "SubState")
        pid, count = int(now["MainPID"]), int(now["NRestarts"])
        running = (now["ActiveState"], now["SubState"]) == ("active", "running")
        return (pid, count) if running and pid not in (0, old) and count > restarts else None

    return wait_for(restarted, timeout=20, interval=0.2, what=f"{UNIT} to be restarted")


def test_sigkill_of_the_main_pid_is_restarted_by_systemd(lane: Lane) -> None:
    box = lane.box
    restarts_before = int(box.show(UNIT, "NRestarts")["NRestarts"])
    try:
        pid, restarts = _kill_main_and_wait_for_restart(lane)
        assert restarts == restarts_before + 1
        assert running_run_sh(box, pid)["Uid"].split() == [str(lane.service_uid())] * 4
    finally:
        lane.end_orphans()  # see the next test


def test_sigkill_of_the_main_pid_leaves_no_orphan_behind(lane: Lane) -> None:
    try:
        _kill_main_and_wait_for_restart(lane)
        assert lane.orphans() == []
    finally:
        lane.end_orphans()


def test_restart_replaces_the_main_process(lane: Lane) -> None:
    box = lane.box
    old = lane.main_pid()
    result = lane.apply("restart")
    (action,) = result["actions"]
    assert (action["action"], action["job_result"], action["main_pid_before"]) == (
        "restart",
        "done",
        old,
    )
    pid = lane.main_pid()
    assert pid not in (0, old)
    assert result["unit_state"]["main_pid"] == pid
    assert box.show(UNIT, "ActiveState")["ActiveState"] == "active"
    assert running_run_sh(box, pid)["Uid"].split() == [str(lane.service_uid())] * 4
    assert lane.orphans() == []
    assert old not in {p for p, _ in unit_processes(box, UNIT)}


def test_stop_disable_remove_unit_leave_nothing_behind(lane: Lane) -> None:
    box = lane.box
    helper = lane.installed.helper

    stop = lane.apply("stop")
    assert stop["actions"][0]["job_result"] == "done"
    props = box.show(UNIT, "ActiveState", "MainPID")
    assert props == {"ActiveState": "inactive", "MainPID": "0"}
    assert unit_processes(box, UNIT) == []
    assert processes_of(box, SERVICE_USER) == []
    # run.sh passed SIGTERM on and the listener closed its session; a session a SIGKILLed
    # listener left open expires with the emulator's session timeout (10 s).
    wait_for(
        lambda: (r := lane.github_runner()) is not None and r["status"] == "offline",
        timeout=20,
        interval=0.5,
        what="the runner to be offline",
    )

    assert exists(box, WANTS_LINK)
    lane.apply("disable")
    assert not exists(box, WANTS_LINK)
    assert box.show(UNIT, "UnitFileState")["UnitFileState"] == "disabled"

    box.exec("rm", "-rf", TEST_DROPIN_DIR)  # this module's own drop-in, not the helper's
    result = lane.apply("remove-unit")
    assert result["hash_before"] is not None
    assert result["hash_after"] is None
    assert result["daemon_reload_needed"] is True
    assert not exists(box, DROPIN_DIR)
    lane.apply("daemon-reload")

    left = box.exec(
        "find", "/etc/systemd", "/run/systemd/system", "-name", f"*{LANE}*"
    ).stdout.split()
    assert left == []
    after = box.show(UNIT, "ActiveState", "UnitFileState", "DropInPaths", "NeedDaemonReload")
    assert after == {
        "ActiveState": "inactive",
        "UnitFileState": "disabled",
        "DropInPaths": "",
        "NeedDaemonReload": "no",
    }
    # Without its drop-in the template cannot start anything (AssertPathExists=).
    assert box.systemctl("start", UNIT, check=False).returncode != 0
    assert processes_of(box, SERVICE_USER) == []
    box.systemctl("reset-failed", UNIT, check=False)
    again = helper.ok("remove-unit", apply=True)
    assert again["changed"] is False


SQUATTER = "lp-test-squatter.service"


def test_remove_runner_directory_checks_for_users_then_removes_it(lane: Lane) -> None:
    box = lane.box
    helper = lane.installed.helper
    runner = lane.github_runner()
    assert runner is not None
    path = f"/api/v3/repos/{REPOSITORY}/actions/runners/{runner['id']}"
    assert lane.github.request("DELETE", path)[0] == 204  # what the agent does: no token
    lane.apply("unregister-runner")
    assert lane.github_runner() is None
    assert not exists(box, f"{RUNNER_DIR}/.runner")

    plan = helper.ok("remove-runner-directory")
    (action,) = plan["actions"]
    assert (action["status"], action["path"], action["user"]) == (
        "planned",
        RUNNER_DIR,
        SERVICE_USER,
    )
    assert {"run.sh", "config.sh", "bin"} <= set(action["entries"])
    assert plan["changed"] is False
    assert exists(box, f"{RUNNER_DIR}/run.sh")

    # A process of the service user working in the directory: found by the step's /proc
    # scan (the helper itself cannot see it under ProtectProc=invisible).
    box.exec(
        "systemd-run",
        f"--unit={SQUATTER}",
        f"--property=User={SERVICE_USER}",
        f"--property=WorkingDirectory={RUNNER_DIR}",
        "/bin/sleep",
        "infinity",
    )
    try:
        error = helper.refused("remove-runner-directory", apply=True)
        assert (error["code"], error["reason"]) == ("conflict", "directory_in_use")
        assert exists(box, f"{RUNNER_DIR}/run.sh")
    finally:
        box.systemctl("stop", SQUATTER, check=False)

    result = lane.apply("remove-runner-directory")
    (action,) = result["actions"]
    assert (action["status"], action["exit_status"]) == ("done", 0)
    assert result["removed"] is True
    assert not exists(box, RUNNER_DIR)
    assert box.exec("stat", "-c", "%U %a", REGISTRATION_ROOT).stdout.split() == [
        SERVICE_USER,
        "755",
    ]
    journal = box.exec(
        "journalctl", "--no-pager", "-o", "cat", "-u", action["transient_unit"]
    ).stdout
    assert f"removed {RUNNER_DIR}" in journal
    again = helper.ok("remove-runner-directory", apply=True)
    assert (again["changed"], again["actions"][0]["status"]) == (False, "skipped")
