"""Fixtures for the package tier: the .deb (built once, or reused from dist/ when fresh) and
the sandbox's root file system. Each test module boots its own container.

Like tests/systemd: when the sandbox cannot be had the tests fail loudly, always under
CI=true, and elsewhere too unless LP_SKIP_SYSTEMD=1 is set explicitly.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.package.debs import (
    UPGRADE_SUFFIX,
    DebBuildError,
    base_version,
    emulator_wheels,
    ensure_deb,
)
from tests.sandbox import Bind, Sandbox, SandboxError
from tests.sandbox.tier import prepared_rootfs, unavailable


@pytest.fixture(scope="session")
def package_rootfs() -> Path:
    return prepared_rootfs("package tier")


def _deb(version: str) -> Path:
    try:
        return ensure_deb(version)
    except (DebBuildError, subprocess.TimeoutExpired) as exc:
        failure = str(exc)
    pytest.fail(f"building the .deb failed:\n{failure}", pytrace=False)


@pytest.fixture(scope="session")
def base_deb(package_rootfs: Path) -> Path:
    """The package at pyproject's version, as `make deb` builds it."""
    return _deb(base_version())


@pytest.fixture(scope="session")
def upgrade_deb(base_deb: Path) -> Path:
    """A newer build of the same source (`make deb DEB_VERSION=<version>+upgradetest1`)."""
    return _deb(base_version() + UPGRADE_SUFFIX)


@pytest.fixture(scope="session")
def emulator_wheel_dir(package_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return emulator_wheels(tmp_path_factory.mktemp("emulator-requirements"))
    except (DebBuildError, subprocess.SubprocessError) as exc:
        failure = str(exc)
    pytest.fail(f"preparing the emulator's wheels failed:\n{failure}", pytrace=False)


def boot(name: str, *binds: Bind) -> Sandbox:
    """A fresh container NAME (one left running by a killed session is taken down first)."""
    box = Sandbox(name, binds)
    try:
        if box.is_up():
            box.down()
        box.up()
    except SandboxError as exc:
        failure = f"'{name}' did not boot:\n{exc}"
    else:
        return box
    unavailable("package tier", failure)
