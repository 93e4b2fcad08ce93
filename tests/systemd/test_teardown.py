"""`sandbox.sh down` leaves nothing behind: no process, mount, cgroup or /run entry.

A second container with its own name comes and goes while the session's one runs; what
is left is checked here from the host, independently of the script's own verification.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.sandbox import Sandbox, SandboxError
from tests.systemd.conftest import MACHINE

pytestmark = pytest.mark.systemd

NAME = "lp-teardown-check"
CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))


def _alive(pid: int) -> bool:
    """True if PID runs (a zombie waiting for the host's PID 1 to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def _nspawn_processes(name: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "systemd-nspawn":
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if name.encode() in argv or f"--machine={name}".encode() in argv:
            found.append(int(proc.name))
    return found


def _cgroups_named(name: str) -> list[Path]:
    hits = []
    for root in CGROUP_ROOTS:
        if not root.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(root):
            depth = Path(dirpath).relative_to(root).parts
            if len(depth) >= 3:
                dirnames.clear()
            hits += [Path(dirpath) / d for d in dirnames if d == name]
    return hits


def _leftovers(name: str, pids: list[int], rootfs: str) -> list[str]:
    left = [f"process {pid}" for pid in pids if _alive(pid)]
    left += [f"nspawn process {pid}" for pid in _nspawn_processes(name)]
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    left += [f"mount {m}" for m in mounts if rootfs in m or name in m]
    left += [f"cgroup {c}" for c in _cgroups_named(name)]
    for path in (
        Path("/run/systemd/nspawn/propagate") / name,
        Path("/run/launchplane-sandbox") / name,
    ):
        if path.exists():
            left.append(f"file {path}")
    return left


@pytest.mark.parametrize("stop_timeout", [30, 0], ids=["sigterm", "sigkill-escalation"])
def test_down_leaves_nothing(sandbox: Sandbox, sandbox_rootfs: Path, stop_timeout: int) -> None:
    box = Sandbox(NAME, stop_timeout=stop_timeout)
    if box.is_up():
        box.down()
    box.up()
    try:
        assert box.exec("hostname").stdout.strip() == NAME
        pids = [box.nspawn_pid, box.leader_pid]
        cgroups = (box.state_dir / "cgroups").read_text().split()
        assert cgroups, "no cgroup recorded"
        for cgroup in cgroups:
            assert Path(cgroup, "payload").is_dir()
            assert Path(cgroup, "supervisor").is_dir()
        # Each container has cgroups of its own: no collision with the session's one.
        assert all(c.endswith(f"/launchplane-sandbox/{NAME}") for c in cgroups)
        assert (
            f"/launchplane-sandbox/{MACHINE}/payload"
            in Path(f"/proc/{sandbox.leader_pid}/cgroup").read_text()
        )
    finally:
        report = box.down()
    if stop_timeout == 0:
        # No grace: nspawn is SIGKILLed, which leaves its container running; the script
        # must then kill what is in the machine's own cgroups.
        assert "SIGKILL" in report
        assert "killing what is left in the cgroups" in report
    else:
        assert "SIGKILL" not in report
    assert _leftovers(NAME, pids, str(sandbox_rootfs)) == []
    for cgroup in cgroups:
        assert not Path(cgroup).exists()
    # The other container was not disturbed.
    assert sandbox.is_up()
    assert sandbox.exec("hostname").stdout.strip() != NAME


def test_failed_boot_fails_loudly_and_cleans_up(
    sandbox_rootfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "not-an-os"
    empty.mkdir()
    box = Sandbox(NAME, boot_timeout=20)
    monkeypatch.setenv("LP_SANDBOX_ROOTFS", str(empty))
    with pytest.raises(SandboxError) as failure:
        box.up()
    message = str(failure.value)
    assert "exited" in message
    assert "last lines of" in message  # the nspawn log is shown
    assert _leftovers(NAME, [], str(empty)) == []
    box.verify_gone()
