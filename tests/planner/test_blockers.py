"""Blocker codes are an enum with a next step each; every lane finding the shared contract can
raise is one of them (a typo or a new code fails here, not silently in a plan)."""

from __future__ import annotations

import re
from pathlib import Path

from agent.blockers import NEXT_STEPS, BlockerCode
from agent.contracts import Blocker

ROOT = Path(__file__).resolve().parents[2]
FINDING = re.compile(r'Finding\(\s*"([a-z_]+)"')


def test_every_blocker_code_has_a_next_step() -> None:
    assert set(NEXT_STEPS) == set(BlockerCode)
    assert all(step.strip() for step in NEXT_STEPS.values())


def test_every_lane_finding_code_is_a_blocker_code() -> None:
    codes = set()
    for name in ("identifiers.py", "lanes.py", "scope.py"):
        codes |= set(FINDING.findall((ROOT / "helper/contract" / name).read_text()))
    assert "repository_not_allowed" in codes  # the scan finds what it looks for
    assert codes <= set(BlockerCode)


def test_records_keep_the_code_string() -> None:
    blocker = Blocker(code=BlockerCode.RUNNER_BUSY, message="m")
    assert blocker.model_dump(mode="json") == {"code": "runner_busy", "message": "m"}
    assert Blocker.model_validate_json('{"code": "runner_busy", "message": "m"}') == blocker
