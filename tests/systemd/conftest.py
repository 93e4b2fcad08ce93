"""A real systemd for the tests in this directory (see docs/sandbox.md).

One container, ``chris-testing``, is booted per test session and torn down at its end;
the teardown verifies that nothing of it is left. Mark tests with ``@pytest.mark.systemd``.

Fixtures: ``sandbox`` (the bare container), ``installed`` (the project installed in it as
the .deb will install it, with ``installed.helper`` to call the real helper as root or as
the agent user), ``github_inside`` (the GitHub emulator inside the container) and
``runner_archive`` (the runner emulator's tarball in the agent's cache); see installed.py.

If the container cannot be had, the tests fail loudly with the boot log: always under
CI=true, and elsewhere too unless LP_SKIP_SYSTEMD=1 is set explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.runner.build import build as build_runner_archive
from tests.sandbox import Bind, Sandbox, SandboxError
from tests.sandbox.tier import prepared_rootfs, unavailable
from tests.systemd.installed import (
    AGENT_USER,
    RUNNER_CACHE,
    GitHubInside,
    HelperClient,
    HostWheels,
    InstalledHost,
    InstallError,
    install,
    prepare_host_wheels,
)
from tests.systemd.waiting import wait_for

MACHINE = "chris-testing"
REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "systemd: needs the real-systemd sandbox (tests/sandbox); run as root"
    )


@pytest.fixture(scope="session")
def sandbox_rootfs() -> Path:
    """The prepared root file system (host tools installed, tree cached)."""
    return prepared_rootfs("real-systemd sandbox")


@pytest.fixture(scope="session")
def sandbox_scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Host directory bound read-write at /scratch inside the container."""
    return tmp_path_factory.mktemp("sandbox-scratch")


@pytest.fixture(scope="session")
def sandbox(
    sandbox_rootfs: Path,
    sandbox_scratch: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Sandbox]:
    """The session's container: repo read-only at /src, wheels at /wheels, /scratch.

    /wheels is $LP_SANDBOX_WHEELS (filled by ``sandbox.sh prepare-wheels``) or empty.
    """
    wheels_env = os.environ.get("LP_SANDBOX_WHEELS")
    wheels = Path(wheels_env) if wheels_env else tmp_path_factory.mktemp("sandbox-wheels")
    if not wheels.is_dir():
        unavailable("real-systemd sandbox", f"LP_SANDBOX_WHEELS={wheels} is not a directory")
    box = Sandbox(
        MACHINE,
        [
            Bind(REPO, "/src", "ro"),
            Bind(wheels, "/wheels", "ro"),
            Bind(sandbox_scratch, "/scratch", "rw"),
        ],
    )
    failure = ""
    try:
        if box.is_up():
            # Left running by a session that was killed before its teardown.
            box.down()
        box.up()
    except SandboxError as exc:
        failure = f"'{MACHINE}' did not boot:\n{exc}"
    if failure:
        unavailable(
            "real-systemd sandbox", failure
        )  # outside the except block: no chained traceback
    try:
        yield box
    finally:
        box.down()  # raises (-> a teardown error) if anything is left behind


# --- the project installed as the package will install it (tests/systemd/installed.py) ---


@pytest.fixture(scope="session")
def host_wheels(sandbox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> HostWheels:
    """Wheels for the container: pinned runtime deps and the emulator's extras (cached under
    /var/tmp/launchplane-systemd by their pins), the project wheel built for this session."""
    del sandbox_rootfs  # only so that LP_SKIP_SYSTEMD and root are checked first
    try:
        return prepare_host_wheels(REPO, tmp_path_factory.mktemp("installed-wheels"))
    except (InstallError, OSError) as exc:
        failure = f"cannot prepare the wheels to install: {exc}"
    unavailable("real-systemd sandbox", failure)


@pytest.fixture(scope="session")
def installed(sandbox: Sandbox, sandbox_scratch: Path, host_wheels: HostWheels) -> InstalledHost:
    """The session container with the project installed as the .deb will do it: venv at
    /usr/lib/launchplane-runner-maintainer/venv, units in /usr/lib/systemd/system, sysusers
    and tmpfiles applied, /etc/launchplane/lanes.toml for lane cm-website-chris-testing
    (registering at the in-container GitHub emulator), launchplane-helper.socket listening."""
    try:
        install(sandbox, host_wheels, sandbox_scratch, REPO)
    except SandboxError as exc:
        failure = f"installing into '{MACHINE}' failed:\n{exc}"
    else:
        return InstalledHost(sandbox, HelperClient(sandbox))
    unavailable("real-systemd sandbox", failure)


@pytest.fixture(scope="session")
def runner_tarball(sandbox_scratch: Path) -> tuple[Path, str]:
    """The runner emulator's release tarball, built on the host into the shared scratch
    directory (/scratch/runner-archive inside): its host path and sha256."""
    staging = sandbox_scratch / "runner-archive"
    archive, digest = build_runner_archive(staging)
    staging.chmod(0o755)
    archive.chmod(0o644)
    return archive, digest


@pytest.fixture(scope="session")
def github_inside(
    installed: InstalledHost, runner_tarball: tuple[Path, str]
) -> Iterator[GitHubInside]:
    """The GitHub emulator running inside the container on 127.0.0.1:80; its downloads
    endpoint serves the runner emulator's tarball (with its sha256)."""
    github = GitHubInside(installed.sandbox)
    github.start(runner_tarball=f"/scratch/runner-archive/{runner_tarball[0].name}")
    try:
        wait_for(github.healthy, timeout=30, what="the GitHub emulator inside the container")
        yield github
    finally:
        github.stop()


@pytest.fixture(scope="session")
def runner_archive(installed: InstalledHost, runner_tarball: tuple[Path, str]) -> str:
    """The runner emulator's release tarball in the agent's cache, as the agent leaves it
    (/var/cache/launchplane-agent/runners/<sha256>.tar.gz, 0644): its sha256."""
    archive, digest = runner_tarball
    installed.sandbox.exec(
        "install",
        "-m",
        "0644",
        "-o",
        AGENT_USER,
        "-g",
        AGENT_USER,
        f"/scratch/runner-archive/{archive.name}",
        f"{RUNNER_CACHE}/{digest}.tar.gz",
    )
    return digest
