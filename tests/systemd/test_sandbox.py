"""The sandbox really is a booted systemd with a system bus, users and restarts."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.sandbox import ExecError, Sandbox
from tests.systemd.conftest import MACHINE
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

PROBE_USER = "lp-probe"


def _ensure_system_user(sandbox: Sandbox, name: str) -> int:
    sandbox.sh(
        'id -u "$1" >/dev/null 2>&1 || useradd --system --no-create-home '
        '--home-dir /nonexistent --shell /usr/sbin/nologin "$1"',
        name,
    )
    return int(sandbox.exec("id", "-u", name).stdout)


def _install_unit(sandbox: Sandbox, name: str, body: str) -> None:
    sandbox.write_file(f"/etc/systemd/system/{name}", body)
    sandbox.systemctl("daemon-reload")


def _status_field(sandbox: Sandbox, pid: int, field: str) -> str:
    for line in sandbox.read_file(f"/proc/{pid}/status").splitlines():
        key, _, value = line.partition(":")
        if key == field:
            return value.strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_pid1_is_systemd_and_boot_finished(sandbox: Sandbox) -> None:
    assert sandbox.read_file("/proc/1/comm").strip() == "systemd"
    assert Path(f"/proc/{sandbox.leader_pid}/comm").read_text().strip() == "systemd"
    state = sandbox.systemctl("is-system-running", check=False).stdout.strip()
    assert state in {"running", "degraded"}, sandbox.systemctl("--failed", check=False).stdout
    # A real boot: the default target was reached, with no job pending.
    assert sandbox.show("multi-user.target", "ActiveState")["ActiveState"] == "active"
    assert sandbox.systemctl("list-jobs", "--no-legend").stdout.strip() == ""


def test_hostname_is_the_machine_name(sandbox: Sandbox) -> None:
    assert sandbox.exec("hostname").stdout.strip() == MACHINE
    assert sandbox.read_file("/proc/sys/kernel/hostname").strip() == MACHINE


def test_system_bus_answers(sandbox: Sandbox) -> None:
    out = sandbox.exec(
        "busctl",
        "call",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "GetUnit",
        "s",
        "dbus.service",
    ).stdout.strip()
    assert out == 'o "/org/freedesktop/systemd1/unit/dbus_2eservice"'
    version = sandbox.exec(
        "busctl",
        "get-property",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "Version",
    ).stdout
    assert version.startswith('s "252')
    assert sandbox.show("dbus.service", "ActiveState")["ActiveState"] == "active"


def test_host_reaches_the_container_bus(sandbox: Sandbox) -> None:
    """From the host, via /proc/LEADER/root (as the agent-side tests can)."""
    socket_path = Path(sandbox.bus_address.removeprefix("unix:path="))
    assert socket_path.is_socket()
    busctl = shutil.which("busctl")  # the host's, from systemd (a dependency of nspawn)
    assert busctl, "busctl missing on the host"
    out = subprocess.run(
        [
            busctl,
            f"--address={sandbox.bus_address}",
            "call",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "GetUnit",
            "s",
            "multi-user.target",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert out == 'o "/org/freedesktop/systemd1/unit/multi_2duser_2etarget"'


def test_unit_with_user_runs_as_that_uid(sandbox: Sandbox) -> None:
    uid = _ensure_system_user(sandbox, PROBE_USER)
    assert 0 < uid < 1000  # a system user
    unit = "lp-probe-user.service"
    _install_unit(
        sandbox,
        unit,
        f"[Service]\nUser={PROBE_USER}\nExecStart=/bin/sleep infinity\n",
    )
    sandbox.systemctl("start", unit)
    try:
        props = sandbox.show(unit, "ActiveState", "MainPID")
        assert props["ActiveState"] == "active"
        pid = int(props["MainPID"])
        assert pid > 1
        uids = _status_field(sandbox, pid, "Uid").split()
        assert uids == [str(uid)] * 4  # real, effective, saved, filesystem
    finally:
        sandbox.systemctl("stop", unit, check=False)


def test_restart_always_brings_a_killed_service_back(sandbox: Sandbox) -> None:
    unit = "lp-probe-restart.service"
    _install_unit(
        sandbox,
        unit,
        "[Service]\nExecStart=/bin/sleep infinity\nRestart=always\nRestartSec=100ms\n",
    )
    sandbox.systemctl("start", unit)
    try:
        before = sandbox.show(unit, "MainPID", "NRestarts")
        assert before["NRestarts"] == "0"
        old_pid = int(before["MainPID"])
        sandbox.exec("kill", "-KILL", str(old_pid))

        def restarted() -> dict[str, str] | None:
            now = sandbox.show(unit, "MainPID", "NRestarts", "ActiveState")
            fresh = now["MainPID"] not in {"0", str(old_pid)}
            return now if fresh and now["ActiveState"] == "active" else None

        after = wait_for(restarted, timeout=15, what=f"{unit} to restart")
        assert after["NRestarts"] == "1"
    finally:
        sandbox.systemctl("stop", unit, check=False)


def test_network_is_private(sandbox: Sandbox) -> None:
    assert sandbox.exec("ls", "/sys/class/net").stdout.split() == ["lo"]


def test_binds(sandbox: Sandbox, sandbox_scratch: Path) -> None:
    assert sandbox.exec("test", "-f", "/src/tests/sandbox/sandbox.sh").returncode == 0
    denied = sandbox.exec("touch", "/src/.lp-write-probe", check=False)
    assert denied.returncode != 0
    assert "Read-only file system" in denied.stderr
    sandbox.write_file("/scratch/from-container.txt", "hello host\n")
    assert (sandbox_scratch / "from-container.txt").read_text() == "hello host\n"


def test_exec_propagates_exit_code_stdin_and_clean_env(sandbox: Sandbox) -> None:
    assert sandbox.sh("exit 7", check=False).returncode == 7
    assert sandbox.exec("cat", input="through stdin").stdout == "through stdin"
    env = sandbox.exec("env", env={"LP_X": "1"}).stdout.split()
    names = sorted(item.split("=", 1)[0] for item in env)
    assert names == ["HOME", "LANG", "LP_X", "PATH"]
    assert sandbox.exec("pwd", cwd="/etc").stdout.strip() == "/etc"
    with pytest.raises(ExecError, match="exit code 3"):
        sandbox.sh("echo boom >&2; exit 3")


def test_copy_in_and_out(sandbox: Sandbox, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "file.txt").write_text("payload\n")
    sandbox.copy_in(src, "/root/copied")
    assert sandbox.read_file("/root/copied/tree/sub/file.txt") == "payload\n"
    sandbox.copy_out("/root/copied/tree", tmp_path / "back")
    assert (tmp_path / "back" / "tree" / "sub" / "file.txt").read_text() == "payload\n"


def _tiny_wheel(directory: Path) -> Path:
    """A pure-Python wheel made by hand, so the offline install needs no index."""
    name, version = "lp_probe_wheel", "0.1"
    dist = f"{name}-{version}.dist-info"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    files = {
        f"{name}/__init__.py": "ANSWER = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: lp-probe-wheel\nVersion: {version}\n",
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(f"{dist}/RECORD", record)
    return wheel


def test_offline_venv_install_from_find_links(sandbox: Sandbox, sandbox_scratch: Path) -> None:
    """Debian's python3 builds a venv and installs wheels with no index and no network."""
    wheel_dir = sandbox_scratch / "wheels"
    wheel_dir.mkdir(exist_ok=True)
    _tiny_wheel(wheel_dir)
    sandbox.exec("/usr/bin/python3", "-m", "venv", "/opt/lp-probe-venv", timeout=180)
    sandbox.exec(
        "/opt/lp-probe-venv/bin/pip",
        "install",
        "--no-index",
        "--find-links",
        "/scratch/wheels",
        "--disable-pip-version-check",
        "lp-probe-wheel",
        timeout=180,
    )
    out = sandbox.exec(
        "/opt/lp-probe-venv/bin/python",
        "-c",
        "import sys, lp_probe_wheel; print(sys.version_info[:2], lp_probe_wheel.ANSWER)",
    ).stdout.strip()
    assert out == "(3, 11) 42"


_PROBE_PACKAGE = {
    "debian/source/format": "3.0 (native)\n",
    "debian/control": """\
Source: lp-toolchain-probe
Section: misc
Priority: optional
Maintainer: Probe <probe@example.invalid>
Build-Depends: debhelper-compat (= 13)
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: lp-toolchain-probe
Architecture: all
Depends: ${misc:Depends}
Description: sandbox toolchain probe
 Checks that debhelper, dpkg-buildpackage and lintian work in the sandbox.
""",
    "debian/changelog": """\
lp-toolchain-probe (0.1) unstable; urgency=medium

  * Probe.

 -- Probe <probe@example.invalid>  Thu, 01 Jan 2026 00:00:00 +0000
""",
    "debian/rules": "#!/usr/bin/make -f\n%:\n\tdh $@\n",
    "debian/copyright": (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Files: *\nCopyright: 2026 Probe\nLicense: MIT\n"
    ),
}


def test_package_toolchain_builds_checks_and_installs(sandbox: Sandbox) -> None:
    """The package tier's tools are in the image: debhelper 13, lintian, dpkg -i."""
    top = "/root/lp-toolchain-probe/src"
    for path, text in _PROBE_PACKAGE.items():
        sandbox.write_file(f"{top}/{path}", text, mode="0755" if path == "debian/rules" else "0644")
    sandbox.exec("dpkg-buildpackage", "-b", "-us", "-uc", cwd=top, timeout=300)
    deb = "/root/lp-toolchain-probe/lp-toolchain-probe_0.1_all.deb"
    lint = sandbox.exec("lintian", "--fail-on", "error", deb, check=False, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    sandbox.exec("dpkg", "-i", deb, timeout=120)
    try:
        status = sandbox.exec("dpkg-query", "-W", "-f", "${Status}", "lp-toolchain-probe").stdout
        assert status == "install ok installed"
        # The image's dpkg path-excludes do not apply to packages the tests install.
        assert (
            sandbox.exec("test", "-f", "/usr/share/doc/lp-toolchain-probe/copyright").returncode
            == 0
        )
    finally:
        sandbox.exec("dpkg", "--purge", "lp-toolchain-probe", check=False)
