"""The rule every sandbox-backed test tier follows: fail loudly when the sandbox cannot be
had (always under CI=true), skip only when LP_SKIP_SYSTEMD=1 is set outside CI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

from tests.sandbox.fixture import SandboxError, prepare


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_requested() -> bool:
    return not in_ci() and os.environ.get("LP_SKIP_SYSTEMD") == "1"


def unavailable(tier: str, reason: str) -> NoReturn:
    hint = "" if in_ci() else "\n(outside CI, LP_SKIP_SYSTEMD=1 skips these tests)"
    pytest.fail(f"{tier} unavailable: {reason}{hint}", pytrace=False)


def prepared_rootfs(tier: str) -> Path:
    """The sandbox's prepared root file system, or a skip/failure by the rule above."""
    if skip_requested():
        pytest.skip("LP_SKIP_SYSTEMD=1: real-systemd tests skipped on request")
    if os.geteuid() != 0:
        unavailable(tier, "must run as root (systemd-nspawn, nsenter, cgroups)")
    try:
        return prepare()
    except SandboxError as exc:
        failure = f"prepare failed: {exc}"
    unavailable(tier, failure)
