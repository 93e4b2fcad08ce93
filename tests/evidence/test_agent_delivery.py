"""The agent's real dry-run pass (README's demo, GitHub emulator) delivers its record to the
service: the spool empties and the fleet summary shows the lane, not proven."""

from __future__ import annotations

import os

import pytest

from tests.evidence import demo


def test_the_demo_pass_is_delivered_and_summarised(capsys: pytest.CaptureFixture[str]) -> None:
    saved = dict(os.environ)
    try:
        assert demo.main([]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out = capsys.readouterr().out
    assert "# delivering the spool (1 record(s))" in out
    assert "# left in the spool: 0" in out
    assert "# the service holds 1 record(s)" in out
    assert '"proven": false' in out
    assert '"latest_status": "planned"' in out
