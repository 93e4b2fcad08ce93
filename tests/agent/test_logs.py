"""Logs carry their context: every event of a pass has its `pass_id`, every lane's event its
`lane`, bound once (not passed by hand), and each logger is named by its module."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from agent import logs
from tests.agent.fakes import agent_for


def test_a_pass_binds_pass_id_and_lane_for_every_event(tmp_path: Path) -> None:
    stream = io.StringIO()
    logs.configure(json_output=True, stream=stream, level=logging.DEBUG)  # audit.record: debug
    try:
        agent, _, declared = agent_for(tmp_path, apply=True)
        agent.reconcile_pass()
        agent.reconcile_pass(every_lane=True)
        logs.get_logger(__name__).info("after.the.pass")
    finally:
        logs.configure(json_output=False)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    in_pass = [e for e in events if e["event"] != "after.the.pass"]
    records = [e for e in in_pass if e["event"] == "audit.record"]
    assert len(records) >= 3
    assert {e["lane"] for e in records} == {declared.lanes[0].lane_name}
    pass_ids = {e["pass_id"] for e in in_pass}
    assert len(pass_ids) == 2  # one per pass, on every event of it
    assert all(e["logger"].startswith("agent.") for e in in_pass)
    (after,) = [e for e in events if e["event"] == "after.the.pass"]
    assert "pass_id" not in after
    assert "lane" not in after  # the context ends with the pass
