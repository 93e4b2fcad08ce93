"""The frame and request contract: each refusal has its own test, and nothing secret leaks."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from helper.contract.errors import (
    FrameTooLarge,
    FrameTruncated,
    InvalidJson,
    InvalidUtf8,
    LaneRefused,
    ProtocolError,
    RequestInvalid,
    UnknownVerb,
)
from helper.contract.framing import MAX_FRAME, encode_frame, frame_length
from helper.contract.identifiers import Finding
from helper.contract.protocol import (
    VERBS,
    ErrorBody,
    Request,
    Response,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    error_body,
)
from helper.contract.redact import REDACTOR
from tests.fakes.frames import parse_frame
from tests.helper.conftest import CANARY, LANE

SHA = "ab" * 32


def body(**fields: Any) -> bytes:
    base: dict[str, Any] = {"version": 1, "verb": "status", "lane": LANE, "dry_run": True}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def test_a_valid_request_round_trips_with_its_token() -> None:
    request = Request.model_validate(
        {"version": 1, "verb": "register-runner", "lane": LANE, "dry_run": False, "token": CANARY}
    )
    wire = encode_request(request)
    assert CANARY in wire.decode()  # the socket is the one place the token goes
    again = decode_request(wire)
    assert again.token is not None
    assert again.token.get_secret_value() == CANARY
    assert CANARY not in repr(again)
    assert CANARY not in again.model_dump_json()


def test_parse_frame_takes_header_and_body() -> None:
    assert parse_frame(encode_frame(body())).verb == "status"


def test_unknown_verb_is_refused() -> None:
    with pytest.raises(UnknownVerb):
        decode_request(body(verb="shell"))
    with pytest.raises(UnknownVerb):
        decode_request(body(verb="Status"))


@pytest.mark.parametrize(
    "extra",
    [{"unit": "sshd.service"}, {"path": "/etc/shadow"}, {"user": "root"}, {"argv": ["sh"]}],
)
def test_unknown_fields_are_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(RequestInvalid, match="Extra inputs"):
        decode_request(body(**extra))


@pytest.mark.parametrize(
    "fields",
    [
        {"version": True},
        {"version": 1.0},
        {"version": "1"},
        {"version": 2},
        {"dry_run": "true"},
        {"dry_run": 1},
        {"dry_run": None},
        {"lane": [LANE]},
        {"lane": {"name": LANE}},
        {"lane": 7},
        {"verb": ["status"]},
        {"verb": None},
    ],
)
def test_type_confusion_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(RequestInvalid):
        decode_request(body(**fields))


@pytest.mark.parametrize("field", ["version", "verb", "lane", "dry_run"])
def test_missing_fields_are_refused(field: str) -> None:
    with pytest.raises(RequestInvalid, match=field):
        decode_request(body(**{field: ...}))


@pytest.mark.parametrize(
    "lane",
    ["", "../etc", "..", ".", "/etc/passwd", "/srv/x", "a/b", "a\x00b", "A", "-x", "a b", "é"],
)
def test_unsafe_lane_names_are_refused_at_the_frame(lane: str) -> None:
    with pytest.raises(RequestInvalid, match="lane"):
        decode_request(body(lane=lane))


def test_token_only_where_the_verb_takes_one() -> None:
    with pytest.raises(RequestInvalid, match="does not take a token"):
        decode_request(body(token=CANARY))
    with pytest.raises(RequestInvalid, match="requires a token"):
        decode_request(body(verb="register-runner"))
    with pytest.raises(RequestInvalid):
        decode_request(body(verb="register-runner", token=12345678901234567))
    with pytest.raises(RequestInvalid, match="does not take a token"):  # REST removal
        decode_request(body(verb="unregister-runner", token=CANARY))


def test_archive_digest_only_for_install_runner_and_only_lowercase_hex() -> None:
    assert decode_request(body(verb="install-runner", archive_sha256=SHA)).archive_sha256 == SHA
    for bad in [SHA.upper(), SHA[:-1], SHA + "0", SHA[:-1] + "\n", "../" + SHA[3:]]:
        with pytest.raises(RequestInvalid, match="archive_sha256"):
            decode_request(body(verb="install-runner", archive_sha256=bad))
    with pytest.raises(RequestInvalid, match="requires archive_sha256"):
        decode_request(body(verb="install-runner"))
    with pytest.raises(RequestInvalid, match="does not take archive_sha256"):
        decode_request(body(archive_sha256=SHA))


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(InvalidUtf8):
        decode_request(b'{"verb": "\xff\xfe"}')
    with pytest.raises(InvalidUtf8):
        decode_request(body(lane="\ud800"))  # a lone surrogate escaped in JSON


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"status"',
        b'{"version": NaN}',
        b'{"version": Infinity}',
        b'{"verb": "status", "verb": "stop"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a": ' * 40 + b"1" + b"}" * 40,
        b'{"version": ' + b"9" * 5000 + b"}",
    ],
)
def test_malformed_json_is_refused(payload: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_request(payload)
    assert caught.value.code in {"invalid_json", "invalid_utf8", "request_invalid"}


def test_duplicate_keys_cannot_smuggle_a_second_value() -> None:
    with pytest.raises(InvalidJson, match="duplicate"):
        decode_request(b'{"version":1,"verb":"status","lane":"a","dry_run":true,"dry_run":false}')


def test_oversized_frames_are_refused_from_the_header() -> None:
    with pytest.raises(FrameTooLarge):
        frame_length(struct.pack(">I", MAX_FRAME + 1))
    with pytest.raises(FrameTooLarge):
        frame_length(struct.pack(">I", 2**32 - 1))
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * (MAX_FRAME + 1))
    assert frame_length(struct.pack(">I", MAX_FRAME)) == MAX_FRAME


def test_empty_short_and_trailing_frames_are_refused() -> None:
    with pytest.raises(RequestInvalid, match="empty"):
        frame_length(b"\0\0\0\0")
    with pytest.raises(FrameTruncated):
        parse_frame(b"\0\0")
    with pytest.raises(FrameTruncated):
        parse_frame(struct.pack(">I", 100) + b"{}")
    with pytest.raises(RequestInvalid, match="one request per connection"):
        parse_frame(encode_frame(body()) + b"x")


def test_refusals_never_echo_the_token() -> None:
    for payload in [
        body(verb="status", token=CANARY),
        body(verb="register-runner", token=CANARY, lane="../x"),
        body(verb="register-runner", token=CANARY, extra=CANARY),
        body(verb="register-runner", token=CANARY, **{CANARY: 1}),
    ]:
        with pytest.raises(ProtocolError) as caught:
            decode_request(payload)
        assert CANARY not in str(caught.value)


def test_response_requires_ok_exactly_without_error() -> None:
    Response(ok=True, verb="status", lane=LANE, dry_run=True)
    with pytest.raises(ValueError, match="ok must be"):
        Response(
            ok=True, verb="status", lane=LANE, dry_run=True, error=ErrorBody(code="x", message="y")
        )
    with pytest.raises(ValueError, match="ok must be"):
        Response(ok=False, verb="status", lane=LANE, dry_run=True)


def test_an_error_response_with_findings_survives_the_wire() -> None:
    exc = LaneRefused("no", [Finding("host_mismatch", "host_name", "other host")])
    response = Response(ok=False, verb="status", lane=LANE, dry_run=True, error=error_body(exc))
    again = decode_response(encode_response(response))
    assert again == response
    assert again.error is not None
    assert again.error.findings[0].code == "host_mismatch"


def test_responses_are_redacted_on_the_way_out() -> None:
    REDACTOR.register(CANARY)  # whoever learns a secret registers it
    response = Response(
        ok=True, verb="status", lane=LANE, dry_run=True, result={"echo": f"x{CANARY}x"}
    )
    assert CANARY not in encode_response(response).decode()


def test_every_verb_has_a_wire_name() -> None:
    assert len(set(VERBS)) == 12
