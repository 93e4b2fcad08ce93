"""Acceptance (#15): README's "Install on a host" walked as written on a bare Debian 12 host with
the .deb, GitHub Enterprise Server configured by README's one setting; `doctor` on that host;
and a burst of lanes.toml saves that must leave the path unit watching.

Container `lp-pkg-walk`. The steps come from README.md (tests/package/readme_walk.py), with
only the README's placeholders substituted: the repository (the emulator's), this host's name,
the token pasted on stdin, a record id and the Enterprise Server's URL. GitHub is the emulator
on the container's loopback, reached through README's `[github] web_url` alone: no drop-in, no
environment variable, no `[policy] github_web_url`. The emulator serves plain HTTP, so the
example's `https://ghes.example` becomes `http://127.0.0.1` (scheme and host: plain http is
accepted for a loopback host only, and TLS would need a CA both the agent's httpx and the
runner's config.sh trust).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.package.conftest import boot
from tests.package.debs import REPO
from tests.package.readme_walk import README, RECORD_PLACEHOLDER, Walk, parse
from tests.package.test_deb_first_pass import (
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
    """One README line, through bash, in the directory holding the .deb, with no GitHub
    setting in its environment (as root's shell has none); its stdout."""
    return box.exec("bash", "-c", command, input=stdin, cwd="/dist").stdout


def on_emulator(walk: Walk, text: str) -> str:
    """TEXT (a lanes.toml of the walk) with README's Enterprise Server block, the server
    being the emulator."""
    return walk.on_server(text, EMULATOR)


def save(box: Sandbox, text: str) -> None:
    """Root saves lanes.toml the way an editor does (a new file renamed over the old)."""
    box.sh(f"umask 022; cat > {LANES}.new && mv {LANES}.new {LANES}", input=text)


def journal_of(box: Sandbox, unit: str) -> str:
    return box.exec("journalctl", "-q", "-o", "cat", "-u", unit).stdout


def newest(box: Sandbox, lane: str) -> dict[str, object]:
    return max(
        (r for r in records(box) if r.get("lane_name") == lane),
        key=lambda r: str(r.get("created_at")),
    )


def minute(record: dict[str, object]) -> str:
    """A record's time as `status` prints it."""
    return f"{datetime.fromisoformat(str(record['created_at'])):%Y-%m-%d %H:%M}"


def table_row(table: str, lane: str) -> dict[str, str]:
    """LANE's row of a `status` table, cut at the header's column starts."""
    lines = table.splitlines()
    starts = [(m.start(), m.group()) for m in re.finditer(r"\S+", lines[0])]
    row = next(line for line in lines[1:] if line.split()[:1] == [lane])
    ends = [at for at, _ in starts[1:]] + [len(row)]
    return {name: row[at:end].strip() for (at, name), end in zip(starts, ends, strict=True)}


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

    # The emulator stands in for GitHub; the agent's service is as the package installed it.
    start_emulator(host)
    assert "LAUNCHPLANE_" not in host.show(AGENT, "Environment")["Environment"]
    assert f"{AGENT}.d" not in host.show(AGENT, "DropInPaths")["DropInPaths"]

    # Configure a lane: the credential, then lanes.toml with `apply = false` and README's
    # Enterprise Server setting, the only GitHub setting anywhere.
    run(host, walk.credential, stdin=TOKEN + "\n")
    assert host.sh("stat -c %a /etc/launchplane/credentials/github-token").stdout.strip() == "600"
    declared = on_emulator(walk, walk.lanes_toml)
    parsed = tomllib.loads(declared)
    assert parsed["github"] == {"web_url": EMULATOR}
    assert "github_web_url" not in parsed["policy"]
    save(host, declared)
    wait_for(
        lambda: lane_records(host, walk.lane, "planned"),
        timeout=60,
        interval=1,
        what=f"the path unit's pass to record {walk.lane} planned",
    )
    assert untouched(host, walk.lane), "a lane with apply = false was acted on"

    # Set `apply = true` and save again: the path unit's pass brings it to `completed`.
    save(host, on_emulator(walk, walk.applied()))
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
    # The runner registered with the server of the one setting (the helper read it too).
    runner = host.read_file(f"/srv/launchplane/runners/{walk.lane}/.runner").lstrip("\ufeff")
    assert json.loads(runner)["gitHubUrl"] == f"{EMULATOR}/{REPOSITORY}"
    # The service wrote the record: its journal has the record's line (`--json reconcile`
    # prints it when the pass ends, after the record file).
    record = max(completed, key=lambda r: str(r.get("created_at")))
    line = {"lane": walk.lane, "record": record["record_id"], "status": "completed"}
    wait_for(
        lambda: json.dumps(line, sort_keys=True) in journal_of(host, AGENT),
        timeout=60,
        interval=1,
        what=f"the agent service's journal line {line}",
    )

    # Read its audit: every line of the block, RECORD_ID being the completed record.
    record_id = str(record["record_id"])
    out = {c: run(host, c.replace(RECORD_PLACEHOLDER, record_id)) for c in walk.audit}
    # The CLI run by hand (no environment) agrees with the service: same server (GitHub
    # shows the runner online), proven, and the service's record as the last one.
    status = next(text for c, text in out.items() if re.search(r"agent\s+status\b", c))
    assert newest(host, walk.lane)["record_id"] == record_id, "a pass wrote a newer record"
    row = table_row(status, walk.lane)
    assert row["github"] == "online", status
    assert row["proven"] == "yes", f"status does not show {walk.lane} proven:\n{status}"
    assert row["last_record"] == f"completed {minute(record)}", status
    assert row["last_proven"] == minute(record), status
    shown = next(text for c, text in out.items() if RECORD_PLACEHOLDER in c)
    assert record_id in shown
    assert "completed" in shown
    listed = next(text for c, text in out.items() if "audits list" in c)
    assert listed.splitlines()[-1].split()[2:] == ["completed", walk.lane, record_id], listed
    assert next(text for c, text in out.items() if "journalctl" in c).strip()
    assert next(text for c, text in out.items() if "helper.jsonl" in c).strip()


def doctor(box: Sandbox) -> tuple[int, set[str], list[dict[str, object]]]:
    """`launchplane-agent doctor --json` as root types it: its exit code, the codes of the
    failed checks and every check."""
    done = box.exec("launchplane-agent", "doctor", "--json", check=False, timeout=120)
    checks = json.loads(done.stdout)
    assert isinstance(checks, list), done.stderr
    return done.returncode, {str(c["code"]) for c in checks if not c["passed"]}, checks


def emulator_faults(box: Sandbox, method: str, fault: dict[str, object] | None = None) -> None:
    """The emulator's fault plan (its private control route): add FAULT, or clear them."""
    box.python(
        "import json, sys, urllib.request\n"
        f"urllib.request.urlopen(urllib.request.Request('{EMULATOR}/_emulator/faults',"
        f" method='{method}', data=sys.stdin.read().encode() or None,"
        " headers={'Content-Type': 'application/json'}), timeout=10)\n",
        input=json.dumps(fault) if fault is not None else "",
    )


def test_doctor_passes_and_names_each_injected_fault(host: Sandbox, walk: Walk) -> None:
    """On the host the walk left (one proven lane, Enterprise Server by the one setting):
    `doctor` passes, then names a lanes.toml anyone can write, a stopped timer, a revoked token
    and an orphan (the lane deleted from lanes.toml while it runs)."""
    assert lane_records(host, walk.lane, "completed"), "needs the walk above"
    code, failed, checks = doctor(host)
    assert (code, failed) == (0, set()), checks
    assert {c["check"] for c in checks} >= {"units", "files", "github", "clock", "orphans"}

    host.exec("chmod", "0666", LANES)
    try:
        code, failed, checks = doctor(host)
    finally:
        host.exec("chmod", "0644", LANES)
    assert code == 1
    assert "policy_file_untrusted" in failed, checks

    host.systemctl("stop", "launchplane-agent.timer")
    try:
        code, failed, checks = doctor(host)
    finally:
        host.systemctl("start", "launchplane-agent.timer")
    assert (code, failed) == (1, {"unit_inactive"}), checks

    # A revoked token: GitHub (the emulator) answers every REST request 401 Bad credentials.
    emulator_faults(host, "POST", {"kind": "status", "status": 401, "count": None})
    try:
        code, failed, checks = doctor(host)
    finally:
        emulator_faults(host, "DELETE")
    assert code == 1
    assert "github_auth_failed" in failed, checks

    applied = host.read_file(LANES)
    save(host, applied[: applied.index("[[lanes]]")])
    try:
        code, failed, checks = doctor(host)
    finally:
        save(host, applied)
    assert (code, failed) == (1, {"orphan"}), checks
    orphan = next(c for c in checks if c["code"] == "orphan")
    assert walk.lane in str(orphan["detail"]), orphan

    code, failed, checks = doctor(host)
    assert (code, failed) == (0, set()), checks


def test_restart_and_remove_as_the_readme_says(host: Sandbox, walk: Walk) -> None:
    unit = f"launchplane-runner@{walk.lane}.service"
    state = host.show(unit, "ActiveState", "MainPID")
    assert state["ActiveState"] == "active", "needs the walk above"

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
    save(host, on_emulator(walk, walk.lanes_toml))
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
        host.write_file(f"/root/saves/{n}.toml", on_emulator(walk, text))

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
