"""Acceptance: on a host with only the .debs installed, writing lanes.toml (`apply = true`) and
the credential is all it takes; the agent's own units (the path unit fires on the change,
the timer also exists) drive the lane to a `completed` audit record. Nobody runs the agent.

Container `lp-pkg-e2e`; GitHub is the emulator (tests/emulators/github_api.py) on the
container's own loopback, serving the runner emulator's release archive. The only test-only
configuration is the drop-in /etc/systemd/system/launchplane-agent.service.d/50-emulator.conf
that points the agent at the emulator (LAUNCHPLANE_GITHUB_API_URL / _WEB_URL), and
`github_web_url` in lanes.toml, which the helper gives to config.sh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.package.conftest import boot
from tests.package.debs import EVIDENCE_PACKAGE, REPO, deb_path
from tests.package.evidence_client import API, BASE, mint, request
from tests.sandbox import Bind, Sandbox
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

MACHINE = "lp-pkg-e2e"
LANE = f"e2e-{MACHINE}"
REPOSITORY = "launchplane-e2e/octo-repo"
# Port 80 (the container's own network): the runner drops the port of --url when it builds its
# registration URL, as against a GitHub Enterprise Server (docs/github.md).
PORT = 80
EMULATOR = "http://127.0.0.1"
TOKEN = "ghp_E2eEmulatorAdminToken0123456789abcdef"
EMULATOR_UNIT = "lp-github-emulator.service"
EMULATOR_VENV = "/opt/lp-emulator"
AUDITS = "/var/lib/launchplane-agent/audits"
AGENT_DROPIN = "/etc/systemd/system/launchplane-agent.service.d/50-emulator.conf"
# Not test-only: how an operator points the agent at the evidence service (here the
# launchplane-evidence package installed on the same host, filesystem store, loopback).
EVIDENCE_DROPIN = "/etc/systemd/system/launchplane-agent.service.d/60-evidence.conf"
EVIDENCE_DROPIN_TEXT = f"[Service]\nEnvironment=LAUNCHPLANE_EVIDENCE_URL={BASE}\n"
EVIDENCE_TOKEN_FILE = "/etc/launchplane/credentials/launchplane-evidence-token"
SPOOL = "/var/lib/launchplane-agent/spool"
COMPLETION_TIMEOUT = 180.0

LANES_TOML = f"""\
# Written by root on {MACHINE}: one lane, applied by the timer-driven pass.
[policy]
allowed_repositories = ["{REPOSITORY}"]
approved_hosts = ["{MACHINE}"]
allowed_registration_roots = ["/srv/launchplane/runners"]
allowed_service_users = ["launchplane-runner"]
required_labels = ["self-hosted", "launchplane", "launchplane-managed"]
github_web_url = "{EMULATOR}"

[[lanes]]
lane_name = "{LANE}"
repository = "{REPOSITORY}"
host_name = "{MACHINE}"
registration_root = "/srv/launchplane/runners"
service_user = "launchplane-runner"
labels = ["self-hosted", "launchplane", "launchplane-managed", "{MACHINE}", "e2e"]
product = "e2e"
runner_version_policy = "latest"
apply = true
"""

AGENT_DROPIN_TEXT = f"""\
# TEST ONLY: point the agent at the GitHub emulator on this container's loopback.
[Service]
Environment=LAUNCHPLANE_GITHUB_API_URL={EMULATOR}/api/v3
Environment=LAUNCHPLANE_GITHUB_WEB_URL={EMULATOR}
"""

# Problems seen on systemd 252 that stop the pass before `completed` (see the report to
# the lead / packaging/README.md). Seen in the agent's journal or records, they turn the
# wait into an expected failure with the reason, instead of a 180 s timeout.


@pytest.fixture(scope="module")
def host(base_deb: Path, emulator_wheel_dir: Path) -> Iterator[Sandbox]:
    box = boot(
        MACHINE,
        Bind(base_deb.parent, "/dist", "ro"),
        Bind(REPO, "/src", "ro"),
        Bind(emulator_wheel_dir, "/emulator-wheels", "ro"),
    )
    try:
        evidence_deb = deb_path(base_deb.name.split("_")[1], EVIDENCE_PACKAGE)
        done = box.exec(
            "dpkg",
            "-i",
            f"/dist/{base_deb.name}",
            f"/dist/{evidence_deb.name}",
            env={"DEBIAN_FRONTEND": "noninteractive"},
            timeout=300,
        )
        assert "Setting up" in done.stdout
        yield box
    finally:
        box.systemctl("stop", EMULATOR_UNIT, check=False)
        box.down()


def start_emulator(box: Sandbox) -> None:
    """The GitHub emulator (its own venv: it needs openapi-core, which the product does
    not ship) serving the runner emulator's archive, as a transient unit."""
    box.sh(
        f"/usr/bin/python3 -m venv {EMULATOR_VENV}"
        f" && {EMULATOR_VENV}/bin/pip install -q --no-index --find-links /emulator-wheels"
        " -r /emulator-wheels/requirements.txt",
        timeout=300,
    )
    archive = box.exec(
        "/usr/bin/python3",
        "-m",
        "tests.emulators.runner.build",
        "--out",
        "/root/runner-release",
        cwd="/src",
        env={"PYTHONDONTWRITEBYTECODE": "1"},
    ).stdout.split()[-1]
    box.write_file("/root/emulator-pat", TOKEN + "\n", mode="0600")
    box.exec(
        "systemd-run",
        f"--unit={EMULATOR_UNIT}",
        "--property=WorkingDirectory=/src",
        "--setenv=PYTHONDONTWRITEBYTECODE=1",
        f"{EMULATOR_VENV}/bin/python",
        "-m",
        "tests.emulators.github_api",
        "--host=127.0.0.1",
        f"--port={PORT}",
        f"--repo={REPOSITORY}",
        "--pat-file=/root/emulator-pat",
        f"--runner-tarball={archive}",
    )
    probe = (
        "import urllib.request, sys\n"
        f"try: urllib.request.urlopen('{EMULATOR}/api/v3/repos/{REPOSITORY}', timeout=2)\n"
        "except urllib.error.HTTPError: pass\n"
        "except OSError: sys.exit(1)\n"
    )
    wait_for(
        lambda: box.python(probe, check=False).returncode == 0,
        timeout=30,
        what="the GitHub emulator to listen",
    )


def records(box: Sandbox) -> list[dict[str, object]]:
    """Every audit record on the host (root reads the agent's 0750 store)."""
    code = (
        "import glob, json\n"
        f"print(json.dumps([json.load(open(f)) for f in sorted(glob.glob('{AUDITS}/*/*.json'))]))"
    )
    loaded = json.loads(box.python(code).stdout)
    assert isinstance(loaded, list)
    return [r for r in loaded if isinstance(r, dict)]


def test_first_timer_driven_pass_completes_the_lane(host: Sandbox) -> None:
    start_emulator(host)
    host.write_file(AGENT_DROPIN, AGENT_DROPIN_TEXT)
    # The evidence service: a write token for this host and repository, as the agent's
    # credential, and the service's address.
    token = mint(host, "--host", MACHINE, "--repository", REPOSITORY)
    host.sh(f"umask 077; cat > {EVIDENCE_TOKEN_FILE}", input=token + "\n")
    host.write_file(EVIDENCE_DROPIN, EVIDENCE_DROPIN_TEXT)
    host.systemctl("daemon-reload")
    passes_before = host.show("launchplane-agent.service", "InvocationID")["InvocationID"]

    # All root does: the credential, then lanes.toml (the path unit sees both change).
    host.sh(
        "umask 077; cat > /etc/launchplane/credentials/github-token.new"
        " && mv /etc/launchplane/credentials/github-token.new"
        " /etc/launchplane/credentials/github-token",
        input=TOKEN + "\n",
    )
    host.sh(
        "umask 022; cat > /etc/launchplane/lanes.toml.new"
        " && mv /etc/launchplane/lanes.toml.new /etc/launchplane/lanes.toml",
        input=LANES_TOML,
    )

    deadline = time.monotonic() + COMPLETION_TIMEOUT
    completed: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        completed = [
            r
            for r in records(host)
            if r.get("status") == "completed" and r.get("lane_name") == LANE
        ]
        if completed:
            break
        time.sleep(2)
    journal = host.exec(
        "journalctl", "--no-pager", "-o", "cat", "-u", "launchplane-agent.service", check=False
    ).stdout
    assert completed, f"no completed record for {LANE} in {COMPLETION_TIMEOUT}s:\n{journal[-4000:]}"

    # Started by its units, never by hand: the agent ran as a unit invocation.
    assert host.show("launchplane-agent.service", "InvocationID")["InvocationID"] != passes_before
    unit = f"launchplane-runner@{LANE}.service"
    state = host.show(unit, "ActiveState", "MainPID", "UnitFileState")
    assert state["ActiveState"] == "active"
    assert state["UnitFileState"] == "enabled"
    user = host.exec("ps", "-o", "user=", "-p", state["MainPID"]).stdout.strip()
    assert user == "launchplane-runner"
    # Root reads the audit with the agent's CLI.
    listing = host.exec("launchplane-agent", "audits", "list", "--lane", LANE).stdout
    assert "completed" in listing


def test_the_installed_agent_delivered_to_the_installed_service(host: Sandbox) -> None:
    """The same pass delivered its records (through its spool) to launchplane-evidence on
    this host: every record of the lane is there exactly once, and the fleet calls the
    lane proven."""
    ours = {str(r["record_id"]) for r in records(host) if r.get("lane_name") == LANE}
    assert any(r.get("status") == "completed" for r in records(host))
    read = mint(host, "--read")

    def delivered() -> list[str]:
        code, body = request(host, "GET", f"{API}/audits?lane={LANE}&limit=500", token=read)
        assert code == 200, body
        return [str(r["record_id"]) for r in body["records"]]

    wait_for(lambda: set(delivered()) >= ours, timeout=120, what="every record delivered")
    got = delivered()
    assert sorted(got) == sorted(set(got))  # exactly once
    assert set(got) == ours
    # None of the lane's records is left in the spool (records of the example lane, for
    # another host, are refused with this host's token and stay there, by design).
    spooled = host.sh(f"ls {SPOOL} 2>/dev/null || true").stdout.split()
    assert ours.isdisjoint(name.removesuffix(".json") for name in spooled)
    code, fleet = request(host, "GET", f"{API}/fleet?host={MACHINE}", token=read)
    assert code == 200
    lanes = [lane for lane in fleet["lanes"] if lane["lane"] == LANE]
    assert len(lanes) == 1
    assert lanes[0]["proven"] is True
