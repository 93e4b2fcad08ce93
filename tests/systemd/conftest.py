"""A real systemd for the tests in this directory (see docs/sandbox.md).

One container, ``chris-testing``, is booted per test session and torn down at its end;
the teardown verifies that nothing of it is left. Mark tests with ``@pytest.mark.systemd``.

If the container cannot be had, the tests fail loudly with the boot log: always under
CI=true, and elsewhere too unless LP_SKIP_SYSTEMD=1 is set explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.sandbox import Bind, Sandbox, SandboxError, prepare

MACHINE = "chris-testing"
REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "systemd: needs the real-systemd sandbox (tests/sandbox); run as root"
    )


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _skip_requested() -> bool:
    return not _in_ci() and os.environ.get("LP_SKIP_SYSTEMD") == "1"


def _unavailable(reason: str) -> NoReturn:
    hint = "" if _in_ci() else "\n(outside CI, LP_SKIP_SYSTEMD=1 skips these tests)"
    pytest.fail(f"real-systemd sandbox unavailable: {reason}{hint}", pytrace=False)


@pytest.fixture(scope="session")
def sandbox_rootfs() -> Path:
    """The prepared root file system (host tools installed, tree cached)."""
    if _skip_requested():
        pytest.skip("LP_SKIP_SYSTEMD=1: real-systemd tests skipped on request")
    if os.geteuid() != 0:
        _unavailable("must run as root (systemd-nspawn, nsenter, cgroups)")
    try:
        return prepare()
    except SandboxError as exc:
        failure = f"prepare failed: {exc}"
    _unavailable(failure)


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
        _unavailable(f"LP_SANDBOX_WHEELS={wheels} is not a directory")
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
        _unavailable(failure)  # outside the except block: no chained traceback
    try:
        yield box
    finally:
        box.down()  # raises (-> a teardown error) if anything is left behind
