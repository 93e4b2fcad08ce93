"""A canary token travels helperctl -> helper -> step stdin -> config.sh's environment, and
appears nowhere else: not in responses, the audit log, the journal stream or unit properties."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from helper.contract.client import call
from helper.contract.errors import RequestInvalid
from helper.contract.protocol import Request, Response, decode_request, encode_response
from helper.contract.redact import MASK, REDACTOR, Redactor
from helper.contract.transient import transient_properties
from tests.helper.conftest import CANARY, LANE, World, out, serve_while


@pytest.mark.parametrize("dry_run", [True, False])
def test_the_canary_reaches_config_sh_and_nothing_else(
    world: World, capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    verb = "register-runner"
    world.make_lane_dir()
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


def test_a_peers_token_blanks_nothing_in_the_next_status(world: World) -> None:
    """The attack of issue 13 item 4: the agent sends a path as a "token"; root's next
    `status`, over the real server and socket, still shows every path."""
    world.make_lane_dir()
    path = str(world.lane_dir)
    assert len(path) >= 16
    poison = Request.model_validate(
        {"version": 1, "verb": "register-runner", "lane": LANE, "dry_run": True, "token": path}
    )
    status = Request(version=1, verb="status", lane=LANE, dry_run=True)

    async def client(name: str) -> tuple[Response, Response]:
        first = await asyncio.to_thread(call, "\0" + name, poison, 5)
        return first, await asyncio.to_thread(call, "\0" + name, status, 5)

    (own, after), _ = serve_while(world, client)
    assert own.ok, own.error
    assert out(own)["runner_directory"] == MASK  # masked in the request's own answer
    rendered = json.dumps(after.result)  # and nowhere else: every path shown in full
    assert MASK not in rendered
    assert json.dumps(path) in rendered
    assert out(after)["dropin"]["path"] == str(world.dropin)
    assert [line["verb"] for line in world.audit_lines()] == ["register-runner", "status"]


def test_decoding_a_request_leaves_the_process_redactor_alone() -> None:
    before = REDACTOR._forms
    own = Redactor()
    body = {"version": 1, "verb": "register-runner", "lane": LANE, "dry_run": True}
    decode_request(json.dumps({**body, "token": CANARY}).encode(), own)
    with pytest.raises(RequestInvalid):
        decode_request(json.dumps({**body, "token": CANARY + " x"}).encode(), own)
    assert REDACTOR._forms == before
    assert own.redact(CANARY) == MASK
