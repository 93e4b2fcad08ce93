"""A canary token travels helperctl -> helper -> step stdin -> config.sh's environment, and
appears nowhere else: not in responses, the audit log, the journal stream or unit properties."""

from __future__ import annotations

import hashlib

import pytest

from helper.contract.protocol import encode_response
from helper.contract.transient import transient_properties
from tests.helper.conftest import CANARY, LANE, World, out


@pytest.mark.parametrize("dry_run", [True, False])
@pytest.mark.parametrize("verb", ["register-runner", "unregister-runner"])
def test_the_canary_reaches_config_sh_and_nothing_else(
    world: World, capsys: pytest.CaptureFixture[str], verb: str, dry_run: bool
) -> None:
    world.make_lane_dir(registered=verb == "unregister-runner")
    response = world.ask(verb, dry_run=dry_run, token=CANARY)
    assert response.ok, response.error
    wire = encode_response(response).decode()
    assert CANARY not in wire
    assert CANARY not in world.audit_log.read_text()
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err
    if dry_run:
        assert world.systemd.transients == []
        assert out(response)["actions"][0]["status"] == "planned"
        return
    (spec, stdin) = world.systemd.transients[0]
    assert stdin == CANARY.encode() + b"\n"  # the only channel into the step
    for name, _, value in transient_properties(spec):
        assert CANARY not in repr(value), name
    calls = (world.lane_dir / "config-calls.log").read_text()
    assert CANARY not in calls  # not in config.sh's argv
    assert "env-token:yes" in calls
    assert f"token-sha:{hashlib.sha256(CANARY.encode()).hexdigest()}" in calls


def test_a_refused_request_does_not_echo_the_canary(world: World) -> None:
    response = world.ask("register-runner", dry_run=False, token=CANARY, lane="not-declared")
    assert response.error is not None
    assert CANARY not in encode_response(response).decode()
    assert CANARY not in world.audit_log.read_text()


def test_the_audit_log_records_every_field_but_the_token(world: World) -> None:
    world.make_lane_dir()
    world.ask("register-runner", dry_run=True, token=CANARY, uid=0)
    (line,) = world.audit_lines()
    assert set(line) >= {
        "time",
        "peer_uid",
        "peer_pid",
        "verb",
        "lane",
        "dry_run",
        "ok",
        "code",
        "unit_hash_before",
        "unit_hash_after",
    }
    assert line["verb"] == "register-runner"
    assert line["peer_pid"] == 123
    assert "token" not in line


def test_a_token_equal_to_an_identifier_cannot_blank_the_audit_trail(world: World) -> None:
    world.make_lane_dir()
    response = world.ask("register-runner", dry_run=True, token=LANE)  # a "token" = the lane
    assert response.ok
    (line,) = world.audit_lines()
    assert line["lane"] == LANE
    assert line["verb"] == "register-runner"
