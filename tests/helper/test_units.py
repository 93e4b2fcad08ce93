"""The shipped units: `systemd-analyze verify` has nothing to say (stderr empty), and the
exposure scores stay within their budgets (helper <= 1.0, a runner lane <= 3.0)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helper.contract.dropin import render_dropin
from helper.contract.lanes import parse_lanes
from tests.helper.conftest import LANE, lanes_toml

UNITS = Path(__file__).resolve().parents[2] / "units"
HELPER_EXEC = "usr/lib/launchplane-runner-maintainer/venv/bin/launchplane-helper"
RUNNERS = "/srv/launchplane/runners"
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def analyze(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, f"--root={root}", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with the host's system units, ours as the package installs them, the helper's
    executable, a runner directory and the rendered drop-in of the example lane."""
    base = tmp_path_factory.mktemp("root")
    system = base / "usr/lib/systemd/system"
    shutil.copytree("/usr/lib/systemd/system", system, symlinks=True)
    for unit in UNITS.glob("launchplane-helper.*"):
        shutil.copy(unit, system)
    shutil.copy(UNITS / "launchplane-runner@.service", system)
    for exe in (base / HELPER_EXEC, base / RUNNERS[1:] / LANE / "run.sh", base / "bin/false"):
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    dropin = base / f"etc/systemd/system/launchplane-runner@{LANE}.service.d/50-lane.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text(render_dropin(parse_lanes(lanes_toml(RUNNERS)).lanes[0]))
    return base


@pytest.mark.parametrize(
    "unit",
    [
        "launchplane-helper.socket",
        "launchplane-helper.service",
        "launchplane-runner@.service",
        f"launchplane-runner@{LANE}.service",
    ],
)
def test_verify_is_silent(root: Path, unit: str) -> None:
    done = analyze(root, "verify", unit)
    assert done.stderr == ""
    assert done.returncode == 0


def test_the_dropin_must_reset_execstart(root: Path, tmp_path: Path) -> None:
    """Without `ExecStart=` first, the template's ExecStart would stay: verify says so."""
    dropin = root / f"etc/systemd/system/launchplane-runner@{LANE}.service.d/50-lane.conf"
    good = dropin.read_text()
    try:
        dropin.write_text(good.replace("ExecStart=\n", ""))
        assert (
            "more than one ExecStart"
            in analyze(root, "verify", f"launchplane-runner@{LANE}.service").stderr
        )
    finally:
        dropin.write_text(good)


def score(root: Path, unit: str) -> float:
    out = analyze(root, "security", "--offline=yes", unit).stdout
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)", out)
    assert match, out
    return float(match.group(1))


def test_helper_exposure_is_at_most_1_0(root: Path) -> None:
    assert score(root, "launchplane-helper.service") <= 1.0


def test_runner_lane_exposure_is_at_most_3_0(root: Path) -> None:
    assert score(root, f"launchplane-runner@{LANE}.service") <= 3.0


def unit_lines(name: str) -> set[str]:
    return {line.strip() for line in (UNITS / name).read_text().splitlines()}


def test_socket_is_root_and_agent_user_only() -> None:
    lines = unit_lines("launchplane-helper.socket")
    assert lines >= {
        "ListenStream=/run/launchplane/helper.sock",
        "SocketMode=0600",
        "SocketUser=launchplane-agent",
        "SocketGroup=launchplane-agent",
        "Accept=no",
    }


def test_helper_has_no_capabilities_and_no_network() -> None:
    lines = unit_lines("launchplane-helper.service")
    assert lines >= {
        "CapabilityBoundingSet=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/etc/systemd/system",
        "PrivateNetwork=yes",
        "RestrictAddressFamilies=AF_UNIX",
        "Type=notify",
    }
    assert not any(line.startswith("User=") for line in lines)  # root, by design


def test_runner_template_restarts_and_cannot_start_without_its_dropin() -> None:
    lines = unit_lines("launchplane-runner@.service")
    assert lines >= {
        "Type=exec",
        "Restart=always",
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        "AssertPathExists=/etc/systemd/system/%n.d/50-lane.conf",
        "ExecStart=/bin/false",
        "WantedBy=multi-user.target",
    }
