"""Acceptance (#15): README's "Install on a host" walked as written on a bare Debian 12 host with
the .deb, and a burst of lanes.toml saves that must leave the path unit watching.

Container `lp-pkg-walk`. The steps come from README.md (tests/package/readme_walk.py), with
only the README's placeholders substituted: the repository (the emulator's), this host's name,
the token pasted on stdin and a record id. Test-only, as in test_deb_first_pass.py: GitHub is
the emulator on the container's loopback, which the agent service learns from a drop-in, the
CLI run by hand from its environment and the helper from `[policy] github_web_url`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.package.conftest import boot
from tests.package.debs import REPO
from tests.package.readme_walk import README, RECORD_PLACEHOLDER, Walk, parse
from tests.package.test_deb_first_pass import (
    AGENT_DROPIN,
    AGENT_DROPIN_TEXT,
    COMPLETION_TIMEOUT,
    EMULATOR,
    REPOSITORY,
    TOKEN,
    records,
    start_emulator,
)
from tests.sandbox import Bind, Sandbox
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

MACHINE = "lp-pkg-walk"
LANES = "/etc/launchplane/lanes.toml"
CLI_ENV = {
    "LAUNCHPLANE_GITHUB_API_URL": f"{EMULATOR}/api/v3",
    "LAUNCHPLANE_GITHUB_WEB_URL": EMULATOR,
}
OWN_UNITS = ("launchplane-helper.socket", "launchplane-agent.timer", "launchplane-agent.path")
SAVES = 10
AGENT = "launchplane-agent.service"
STARTS_DEFAULT_LIMIT = 5  # systemd's DefaultStartLimitBurst (in DefaultStartLimitIntervalSec=10s)


@pytest.fixture(scope="module")
def host(base_deb: Path, emulator_wheel_dir: Path) -> Iterator[Sandbox]:
    box = boot(
        MACHINE,
        Bind(base_deb.parent, "/dist", "ro"),
        Bind(REPO, "/src", "ro"),
        Bind(emulator_wheel_dir, "/emulator-wheels", "ro"),
    )
    try:
        yield box
    finally:
        box.down()


@pytest.fixture(scope="module")
def walk() -> Walk:
    return parse(README.read_text(encoding="utf-8"), repository=REPOSITORY, host=MACHINE)


def run(box: Sandbox, command: str, *, stdin: str | None = None) -> str:
    """One README line, through bash, in the directory holding the .deb; its stdout."""
    return box.exec("bash", "-c", command, input=stdin, env=CLI_ENV, cwd="/dist").stdout


def for_emulator(text: str) -> str:
    """Test only: the helper gives config.sh the emulator's URL (`[policy] github_web_url`)."""
    return text.replace("[policy]\n", f'[policy]\ngithub_web_url = "{EMULATOR}"\n', 1)


def save(box: Sandbox, text: str) -> None:
    """Root saves lanes.toml the way an editor does (a new file renamed over the old)."""
    box.sh(f"umask 022; cat > {LANES}.new && mv {LANES}.new {LANES}", input=for_emulator(text))


def lane_records(box: Sandbox, lane: str, status: str) -> list[dict[str, object]]:
    return [r for r in records(box) if r.get("lane_name") == lane and r.get("status") == status]


def untouched(box: Sandbox, lane: str) -> bool:
    """No unit (only the template's inactive, disabled instance) and no runner directory."""
    unit = box.show(f"launchplane-runner@{lane}.service", "ActiveState", "UnitFileState")
    left = box.sh(f"ls -d /srv/launchplane/runners/{lane} 2>/dev/null || true").stdout
    return unit == {"ActiveState": "inactive", "UnitFileState": "disabled"} and left == ""


def test_install_on_a_host_as_the_readme_says(host: Sandbox, walk: Walk) -> None:
    # Install (the build machine's `make deb` is the base_deb fixture).
    for command in walk.install:
        run(host, command)
    for unit in OWN_UNITS:
        state = host.show(unit, "ActiveState", "UnitFileState")
        assert state == {"ActiveState": "active", "UnitFileState": "enabled"}, unit
    # "Nothing is changed yet": no credential, no lane to apply, no runner unit.
    assert host.sh("ls -A /etc/launchplane/credentials").stdout == ""
    shipped = tomllib.loads(host.read_file(LANES))
    assert not [lane for lane in shipped.get("lanes", []) if lane.get("apply")]
    units = host.systemctl("list-units", "--all", "--plain", "launchplane-runner@*").stdout
    assert "launchplane-runner@" not in units

    # Test only: the emulator stands in for GitHub (see the module docstring).
    start_emulator(host)
    host.write_file(AGENT_DROPIN, AGENT_DROPIN_TEXT)
    host.systemctl("daemon-reload")

    # Configure a lane: the credential, then lanes.toml with `apply = false`.
    run(host, walk.credential, stdin=TOKEN + "\n")
    assert host.sh("stat -c %a /etc/launchplane/credentials/github-token").stdout.strip() == "600"
    save(host, walk.lanes_toml)
    wait_for(
        lambda: lane_records(host, walk.lane, "planned"),
        timeout=60,
        interval=1,
        what=f"the path unit's pass to record {walk.lane} planned",
    )
    assert untouched(host, walk.lane), "a lane with apply = false was acted on"

    # Set `apply = true` and save again: the path unit's pass brings it to `completed`.
    save(host, walk.applied())
    completed = wait_for(
        lambda: lane_records(host, walk.lane, "completed"),
        timeout=COMPLETION_TIMEOUT,
        interval=2,
        what=f"a completed record for {walk.lane}",
    )
    unit = f"launchplane-runner@{walk.lane}.service"
    state = host.show(unit, "ActiveState", "MainPID")
    assert state["ActiveState"] == "active"
    assert host.exec("ps", "-o", "user=", "-p", state["MainPID"]).stdout.strip() == (
        "launchplane-runner"
    )

    # Read its audit: every line of the block, RECORD_ID being the completed record.
    record_id = str(completed[-1]["record_id"])
    out = {c: run(host, c.replace(RECORD_PLACEHOLDER, record_id)) for c in walk.audit}
    status = next(text for c, text in out.items() if re.search(r"agent\s+status\b", c))
    header = status.splitlines()[0]
    row = next(line for line in status.splitlines() if line.split()[:1] == [walk.lane])
    proven = row[header.index("proven") :].split()[0]
    assert proven == "yes", f"status does not show {walk.lane} proven:\n{status}"
    assert row[header.index("last_record") :].startswith("completed"), status
    shown = next(text for c, text in out.items() if RECORD_PLACEHOLDER in c)
    assert record_id in shown
    assert "completed" in shown
    assert "completed" in next(text for c, text in out.items() if "audits list" in c)
    assert next(text for c, text in out.items() if "journalctl" in c).strip()
    assert next(text for c, text in out.items() if "helper.jsonl" in c).strip()

    # Restart it: the dry run changes nothing, the confirmed one restarts and proves again.
    dry, confirmed = walk.restart
    pid = state["MainPID"]
    run(host, dry)
    assert host.show(unit, "MainPID")["MainPID"] == pid, "the dry-run restart restarted"
    proofs = len(lane_records(host, walk.lane, "completed"))
    run(host, confirmed)
    assert host.show(unit, "ActiveState")["ActiveState"] == "active"
    assert host.show(unit, "MainPID")["MainPID"] != pid
    assert len(lane_records(host, walk.lane, "completed")) > proofs

    # Remove it: `apply = false` first, then the confirmed remove.
    save(host, walk.lanes_toml)
    for command in walk.remove:
        run(host, command)
    assert lane_records(host, walk.lane, "removed")
    assert untouched(host, walk.lane), "the removed lane left its unit or directory"


def test_a_burst_of_saves_leaves_the_path_unit_watching(host: Sandbox, walk: Walk) -> None:
    """Ten saves of lanes.toml in about five seconds (each a new label on the apply = false lane
    the walk above left behind): the path unit keeps watching, the agent service is not
    failed, and the last save's lane is what the latest record acted on."""
    assert "[[lanes]]" in host.read_file(LANES), "needs the walk above (the package and a lane)"
    texts = [walk.lanes_toml.replace('"repo"]', f'"repo", "save-{n}"]', 1) for n in range(SAVES)]
    assert len(set(texts)) == SAVES, "the README's labels line changed shape"
    for n, text in enumerate(texts):
        host.write_file(f"/root/saves/{n}.toml", for_emulator(text))

    def watching() -> None:
        path = host.show("launchplane-agent.path", "ActiveState", "SubState", "Result")
        assert path == {"ActiveState": "active", "SubState": "waiting", "Result": "success"}
        service = host.show(AGENT, "ActiveState", "Result")
        assert service["ActiveState"] != "failed", service
        assert service["Result"] == "success", service

    # One script: a save every 0.5 s, each after the pass the previous one started has ended,
    # so that every save starts a pass of its own (saves during a pass are merged into it and
    # would not count against a start limit). Ten starts in about five seconds: systemd's
    # default limit (5 in 10 s) fails the path unit with unit-start-limit-hit.
    burst = host.sh(
        f"t0=$(date +%s.%N); since=$(date +%s); for n in $(seq 0 {SAVES - 1}); do"
        f" cp /root/saves/$n.toml {LANES}.new && mv {LANES}.new {LANES}; sleep 0.5;"
        f" while [ $(systemctl show -P ActiveState {AGENT}) = activating ]; do sleep 0.05; done;"
        f" done; journalctl --sync; journalctl -q -o cat --since @$since -u {AGENT}"
        f" | grep -c '^Starting {AGENT}' || true;"
        ' awk "BEGIN { print $(date +%s.%N) - $t0 }"',
    ).stdout.split()
    started, seconds = int(burst[0]), burst[1]
    watching()
    # Precondition: the burst was one (with a start limit, the refused starts would be missing).
    assert started > STARTS_DEFAULT_LIMIT, f"{started} passes in {seconds} s: not a burst"
    last = f"save-{SAVES - 1}"

    def applied() -> bool:
        mine = [r for r in records(host) if r.get("lane_name") == walk.lane]
        newest = max(mine, key=lambda r: str(r.get("created_at")))
        desired = newest.get("desired")
        return isinstance(desired, dict) and last in desired.get("labels", [])

    wait_for(applied, timeout=90, interval=1, what=f"a planned record with the label {last}")
    watching()
