"""Fixtures for the package tier: the .deb (built once, or reused from dist/ when fresh) and
the sandbox's root file system. Each test module boots its own container.

Like tests/systemd: when the sandbox cannot be had the tests fail loudly, always under
CI=true, and elsewhere too unless LP_SKIP_SYSTEMD=1 is set explicitly.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

from tests.package.debs import (
    UPGRADE_SUFFIX,
    DebBuildError,
    base_version,
    emulator_wheels,
    ensure_deb,
)
from tests.sandbox import Bind, Sandbox, SandboxError, prepare

T = TypeVar("T")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> NoReturn:
    hint = "" if _in_ci() else "\n(outside CI, LP_SKIP_SYSTEMD=1 skips these tests)"
    pytest.fail(f"package tier unavailable: {reason}{hint}", pytrace=False)


@pytest.fixture(scope="session")
def package_rootfs() -> Path:
    if not _in_ci() and os.environ.get("LP_SKIP_SYSTEMD") == "1":
        pytest.skip("LP_SKIP_SYSTEMD=1: real-systemd tests skipped on request")
    if os.geteuid() != 0:
        _unavailable("must run as root (systemd-nspawn, nsenter, cgroups)")
    try:
        return prepare()
    except SandboxError as exc:
        failure = f"prepare failed: {exc}"
    _unavailable(failure)


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
    _unavailable(failure)


def wait_for(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5
) -> T:
    """Call PROBE until it returns something truthy; fail after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
