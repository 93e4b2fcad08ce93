"""The helper logs on the agent's structlog set-up: JSON events on stderr, named by module,
each request's events bound to its `request_id`, a peer's token masked in its own events."""

from __future__ import annotations

import io
import json

import pytest

from helper.contract import logs
from tests.helper.conftest import AGENT_UID, CANARY, World


def test_requests_are_logged_as_json_events_with_a_bound_request_id(world: World) -> None:
    stream = io.StringIO()
    logs.configure(json_output=True, stream=stream)
    try:
        world.ask("status", uid=AGENT_UID)
        world.ask("register-runner", uid=AGENT_UID, dry_run=True, token=CANARY)
    finally:
        logs.configure(json_output=True)
    text = stream.getvalue()
    assert CANARY not in text
    events = [json.loads(line) for line in text.splitlines()]
    requests = [e for e in events if e["event"] == "request"]
    assert [e["verb"] for e in requests] == ["status", "register-runner"]
    for event in requests:
        assert event["logger"] == "helper.handler"
        assert event["level"] == "info"
        assert event["peer_uid"] == AGENT_UID
        assert "timestamp" in event
    assert len({e["request_id"] for e in requests}) == 2  # one per request, never shared


def test_an_unconfigured_process_logs_to_stderr_not_stdout(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Until a process configures, events still go to stderr: stdout is for output."""
    logs.configure(json_output=True)  # what importing helper.contract.logs sets up
    capsys.readouterr()
    world.ask("status", uid=AGENT_UID)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err.splitlines()[-1])["event"] == "request"
