"""The .deb's lifecycle on a fresh Debian 12 with a real systemd (container `lp-pkg`):
install, upgrade to a newer build, remove, purge; each step checks the host it leaves.

The steps share one container and run in file order; a step whose predecessor failed fails
at once, naming it.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.package.conftest import boot
from tests.package.debs import PACKAGE, UPGRADE_SUFFIX, base_version
from tests.sandbox import Bind, Sandbox
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

MACHINE = "lp-pkg"
VENV = f"/usr/lib/{PACKAGE}/venv"
TRIGGERS = ("launchplane-helper.socket", "launchplane-agent.timer", "launchplane-agent.path")
SERVICES = ("launchplane-agent.service", "launchplane-helper.service")
OUR_UNITS = (*TRIGGERS, *SERVICES, "launchplane-runner@.service")
EXAMPLE_LANE = "cm-website-chris-testing"
FAKE_LANE = "lp-fake"
FAKE_UNIT = f"launchplane-runner@{FAKE_LANE}.service"
FAKE_DROPIN = f"/etc/systemd/system/{FAKE_UNIT}.d/50-lane.conf"
LOCAL_EDIT = "# edited on this host by root: must survive upgrades\n"
# (path, mode, owner, group) right after install: DESIGN.md "Files on a host".
LAYOUT = (
    ("/etc/launchplane", "755", "root", "root"),
    ("/etc/launchplane/lanes.toml", "644", "root", "root"),
    ("/etc/launchplane/credentials", "700", "root", "root"),
    ("/srv/launchplane", "755", "root", "root"),
    ("/srv/launchplane/runners", "755", "launchplane-runner", "launchplane-runner"),
    ("/var/lib/launchplane-agent", "750", "launchplane-agent", "launchplane-agent"),
    ("/var/lib/launchplane-agent/audits", "750", "launchplane-agent", "launchplane-agent"),
    ("/var/cache/launchplane-agent", "755", "launchplane-agent", "launchplane-agent"),
    ("/var/cache/launchplane-agent/runners", "755", "launchplane-agent", "launchplane-agent"),
    ("/var/log/launchplane", "750", "root", "root"),
)
STATE_DIRS = (
    "/etc/launchplane",
    "/var/lib/launchplane-agent",
    "/var/cache/launchplane-agent",
    "/var/log/launchplane",
)

_done: set[str] = set()


def after(step: str) -> None:
    if step not in _done:
        pytest.fail(f"the {step!r} step did not pass; this one builds on it", pytrace=False)


@pytest.fixture(scope="module")
def box(base_deb: Path, upgrade_deb: Path) -> Iterator[Sandbox]:
    sandbox = boot(MACHINE, Bind(base_deb.parent, "/dist", "ro"))
    try:
        yield sandbox
    finally:
        sandbox.down()


def dpkg(box: Sandbox, *args: str) -> tuple[int, str]:
    """dpkg ARGS with stdin closed and no terminal: a conffile prompt would fail it."""
    done = box.exec(
        "dpkg", *args, check=False, timeout=300, env={"DEBIAN_FRONTEND": "noninteractive"}
    )
    return done.returncode, done.stdout + done.stderr


def status(box: Sandbox) -> str:
    done = box.exec("dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Version}", PACKAGE, check=False)
    return done.stdout.strip() if done.returncode == 0 else "not-known"


def props(box: Sandbox, unit: str) -> dict[str, str]:
    return box.show(unit, "LoadState", "ActiveState", "SubState", "InvocationID", "MainPID")


def stat(box: Sandbox, path: str) -> tuple[str, str, str]:
    mode, owner, group = box.exec("stat", "-c", "%a %U %G", path).stdout.split()
    return mode, owner, group


def exists(box: Sandbox, path: str) -> bool:
    return box.exec("test", "-e", path, check=False).returncode == 0


def srv_snapshot(box: Sandbox) -> str:
    return box.sh("find /srv/launchplane -printf '%p %m %u %g %s %T@\\n' | sort").stdout


def wants_links(box: Sandbox) -> list[str]:
    out = box.sh(
        "for l in /etc/systemd/system/*.wants/*; do "
        '[ -L "$l" ] && printf "%s -> %s\\n" "$l" "$(readlink "$l")"; done; true'
    ).stdout
    return [line for line in out.splitlines() if "launchplane" in line]


# ---------------------------------------------------------------------------------- install


def test_install(box: Sandbox, base_deb: Path) -> None:
    rc, out = dpkg(box, "-i", f"/dist/{base_deb.name}")
    assert rc == 0, out
    assert status(box) == f"ii {base_version()}"

    # Users from sysusers: system accounts without a login.
    for user, home in (
        ("launchplane-agent", "/var/lib/launchplane-agent"),
        ("launchplane-runner", "/srv/launchplane/runners"),
    ):
        name, _, uid, _, _, pw_home, shell = box.exec("getent", "passwd", user).stdout.split(":")
        assert (name, pw_home, shell.strip()) == (user, home, "/usr/sbin/nologin")
        assert int(uid) < 1000
    assert box.exec("getent", "group", "launchplane-agent").returncode == 0

    # Directories from tmpfiles, with their modes and owners; no credential shipped.
    for path, *expected in LAYOUT:
        assert stat(box, path) == tuple(expected), path
    assert box.exec("ls", "-A", "/etc/launchplane/credentials").stdout == ""
    assert (
        "/etc/launchplane/lanes.toml"
        in box.exec("dpkg-query", "-W", "-f", "${Conffiles}", PACKAGE).stdout
    )

    # Units: the triggers enabled and running, the services static, the template unused.
    for unit in TRIGGERS:
        assert box.systemctl("is-enabled", unit).stdout.strip() == "enabled", unit
        assert props(box, unit)["ActiveState"] == "active", unit
    assert props(box, "launchplane-helper.socket")["SubState"] == "listening"
    for unit in SERVICES:
        state = box.systemctl("is-enabled", unit, check=False).stdout.strip()
        assert state == "static", unit
    assert props(box, "launchplane-helper.service")["ActiveState"] == "inactive"
    assert not [link for link in wants_links(box) if "launchplane-runner@" in link]
    assert stat(box, "/run/launchplane/helper.sock") == (
        "600",
        "launchplane-agent",
        "launchplane-agent",
    )
    assert box.exec("test", "-S", "/run/launchplane/helper.sock").returncode == 0

    # The venv: Debian's interpreter, console scripts linked into /usr/bin, byte code
    # shipped, compiled at build time against the sources' hashes (checked-hash: flags 3).
    assert box.exec("readlink", "-f", f"{VENV}/bin/python").stdout.strip() == "/usr/bin/python3.11"
    for tool in ("launchplane-agent", "helperctl"):
        target = box.exec("readlink", "-f", f"/usr/bin/{tool}").stdout.strip()
        assert target == f"{VENV}/bin/{tool}"
    assert not exists(box, "/usr/bin/launchplane-helper")
    shipped = box.exec("dpkg", "-L", PACKAGE).stdout
    for module in (
        "agent/__pycache__/cli",
        "helper/__pycache__/server",
        "pydantic/__pycache__/main",
    ):
        assert f"site-packages/{module}.cpython-311.pyc" in shipped, module
    pyc = f"{VENV}/lib/python3.11/site-packages/agent/__pycache__/cli.cpython-311.pyc"
    assert box.exec("od", "-An", "-tu4", "-j4", "-N4", pyc).stdout.split() == ["3"]
    for doc in ("README.md", "helper.md", "operations.md", "copyright"):
        assert exists(box, f"/usr/share/doc/{PACKAGE}/{doc}"), doc
    completion = "/usr/share/bash-completion/completions/launchplane-agent"
    assert "reconcile" in box.exec("cat", completion).stdout  # shell completion (issue 15)

    # The socket activates the helper (as root, from the venv) and it answers: the shipped
    # example lane is for another host, so it is refused, not served.
    done = box.exec("helperctl", "status", EXAMPLE_LANE, check=False)
    assert done.returncode == 1, done
    assert "host_mismatch" in done.stdout
    helper = props(box, "launchplane-helper.service")
    assert helper["ActiveState"] == "active"
    assert box.exec("ps", "-o", "user=", "-p", helper["MainPID"]).stdout.strip() == "root"
    assert box.exec("launchplane-agent", "plan", "--example").returncode == 0
    _done.add("install")


def test_example_config_mutates_nothing(box: Sandbox) -> None:
    """The shipped lanes.toml: every lane `apply = false`, for a host that is not this one.
    A timer pass on a fresh host (no credential yet) changes nothing."""
    after("install")
    lanes = tomllib.loads(box.read_file("/etc/launchplane/lanes.toml"))
    assert lanes["lanes"], "the example declares a lane"
    assert all(lane.get("apply", False) is False for lane in lanes["lanes"])
    assert all(lane["host_name"] != MACHINE for lane in lanes["lanes"])

    before = props(box, "launchplane-agent.service")["InvocationID"]
    box.systemctl("start", "launchplane-agent.service", check=False)  # what the timer does
    ran = props(box, "launchplane-agent.service")
    assert ran["InvocationID"] != before or ran["ActiveState"] == "inactive"
    assert not box.sh("ls -A /srv/launchplane/runners").stdout
    assert not box.sh("ls -d /etc/systemd/system/launchplane-runner@* 2>/dev/null || true").stdout
    log = box.sh("cat /var/log/launchplane/helper.jsonl 2>/dev/null || true").stdout
    asked = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert not [
        entry for entry in asked if entry.get("dry_run") is False and entry["verb"] != "status"
    ]
    _done.add("example")


# ---------------------------------------------------------------------------------- upgrade


def test_upgrade_keeps_config_and_restarts_units(box: Sandbox, upgrade_deb: Path) -> None:
    after("install")
    box.sh(f"printf %s '{LOCAL_EDIT}' >> /etc/launchplane/lanes.toml")
    edited = box.read_file("/etc/launchplane/lanes.toml")
    box.exec("helperctl", "status", EXAMPLE_LANE, check=False)  # the helper is running
    before = {unit: props(box, unit) for unit in (*TRIGGERS, "launchplane-helper.service")}
    assert before["launchplane-helper.service"]["ActiveState"] == "active"
    users = box.exec("getent", "passwd", "launchplane-agent", "launchplane-runner").stdout

    rc, out = dpkg(box, "-i", f"/dist/{upgrade_deb.name}")
    assert rc == 0, out
    assert status(box) == f"ii {base_version()}{UPGRADE_SUFFIX}"
    # No conffile prompt (stdin is closed: a prompt would have failed dpkg) and the local
    # edit kept as is, with nothing set aside.
    assert "Configuration file" not in out
    assert box.read_file("/etc/launchplane/lanes.toml") == edited
    assert not box.sh("ls /etc/launchplane/ | grep -E 'dpkg-(dist|new|old)' || true").stdout

    # Stopped before the unpack, started after: new invocations, still enabled.
    for unit in TRIGGERS:
        now = props(box, unit)
        assert now["ActiveState"] == "active", unit
        assert now["InvocationID"] != before[unit]["InvocationID"], f"{unit} not restarted"
        assert box.systemctl("is-enabled", unit).stdout.strip() == "enabled"
    helper = props(box, "launchplane-helper.service")
    assert helper["MainPID"] != before["launchplane-helper.service"]["MainPID"]
    # The helper still answers, from the new files.
    assert "host_mismatch" in box.exec("helperctl", "status", EXAMPLE_LANE, check=False).stdout
    assert box.exec("getent", "passwd", "launchplane-agent", "launchplane-runner").stdout == users
    for path, *expected in LAYOUT:
        assert stat(box, path) == tuple(expected), path
    _done.add("upgrade")


# ---------------------------------------------------------------------------------- remove


def _fake_lane(box: Sandbox) -> None:
    """A lane unit as the helper would leave it: a marked drop-in, enabled and running as
    the service user (a sleeping stand-in for run.sh)."""
    box.sh(
        "install -d -o launchplane-runner -g launchplane-runner /srv/launchplane/runners/$1",
        FAKE_LANE,
    )
    box.sh(
        "install -o launchplane-runner -g launchplane-runner -m 0644 /dev/null "
        "/srv/launchplane/runners/$1/.runner",
        FAKE_LANE,
    )
    box.write_file(
        FAKE_DROPIN,
        "[Service]\nUser=launchplane-runner\nGroup=launchplane-runner\n"
        "ExecStart=\nExecStart=/bin/sleep infinity\n"
        f"X-Launchplane-Lane={FAKE_LANE}\nX-Launchplane-Hash={'0' * 64}\n",
    )
    box.systemctl("daemon-reload")
    box.systemctl("enable", "--now", FAKE_UNIT)
    # Type=simple: `start` returns after the fork, before the switch to the service user.
    wait_for(
        lambda: (
            box.exec(
                "ps", "-o", "user=", "-p", props(box, FAKE_UNIT)["MainPID"], check=False
            ).stdout.strip()
            == "launchplane-runner"
        ),
        timeout=10,
        what=f"{FAKE_UNIT} running as launchplane-runner",
    )


def test_remove_stops_everything_and_keeps_config(box: Sandbox) -> None:
    after("upgrade")
    _fake_lane(box)
    box.exec("helperctl", "status", EXAMPLE_LANE, check=False)
    srv = srv_snapshot(box)
    config = box.read_file("/etc/launchplane/lanes.toml")

    rc, out = dpkg(box, "-r", PACKAGE)
    assert rc == 0, out
    assert status(box).startswith("rc")

    # Nothing of ours runs, nothing can start: the unit files are gone.
    for unit in (*TRIGGERS, *SERVICES, FAKE_UNIT):
        now = props(box, unit)
        assert now["ActiveState"] in {"inactive", "failed"}, (unit, now)
    for unit in (*TRIGGERS, *SERVICES):
        assert props(box, unit)["LoadState"] == "not-found", unit
    assert not box.exec("pgrep", "-u", "launchplane-runner,launchplane-agent", check=False).stdout
    assert not [line for line in box.exec("ps", "-eo", "args=").stdout.splitlines() if VENV in line]
    assert not exists(box, f"/usr/lib/{PACKAGE}")
    assert not exists(box, "/usr/bin/launchplane-agent")

    # Configuration and state kept: lanes.toml as root left it, the credential directory,
    # the audits, the lane's drop-in and its enablement link (configuration until purge,
    # as for every Debian package's units); /srv/launchplane untouched.
    assert box.read_file("/etc/launchplane/lanes.toml") == config
    assert stat(box, "/etc/launchplane/credentials") == ("700", "root", "root")
    assert exists(box, "/var/lib/launchplane-agent/audits")
    assert exists(box, FAKE_DROPIN)
    assert [link for link in wants_links(box) if FAKE_UNIT in link]
    assert srv_snapshot(box) == srv
    _done.add("remove")


def test_purge_removes_config_and_state(box: Sandbox) -> None:
    after("remove")
    srv = srv_snapshot(box)
    users = box.exec("getent", "passwd", "launchplane-agent", "launchplane-runner").stdout

    rc, out = dpkg(box, "-P", PACKAGE)
    assert rc == 0, out
    assert status(box) in {"not-known", "un"} or status(box).startswith("un")

    for path in STATE_DIRS:
        assert not exists(box, path), path
    assert not exists(box, FAKE_DROPIN)
    assert not exists(box, f"/etc/systemd/system/{FAKE_UNIT}.d")
    assert wants_links(box) == []
    assert not box.sh(
        "ls /var/lib/systemd/deb-systemd-helper-enabled/ -R | grep launchplane || true"
    ).stdout
    # Kept on purge, by policy (README.md): the runner directories and registrations under
    # /srv/launchplane, and the system users (their uids may still own files there).
    assert srv_snapshot(box) == srv
    assert box.exec("getent", "passwd", "launchplane-agent", "launchplane-runner").stdout == users

    box.systemctl("daemon-reload")
    loaded = box.systemctl("list-units", "--all", "--plain", "--no-legend", "launchplane*").stdout
    assert all("not-found" in line for line in loaded.splitlines()), loaded
    assert wait_for(
        lambda: (
            not box.exec("pgrep", "-u", "launchplane-runner,launchplane-agent", check=False).stdout
        ),
        timeout=10,
        what="no process of the package's users",
    )
