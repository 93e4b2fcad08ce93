"""≥10,000 generated frames through the pure parser and lane validator: every one ends in a
Request (and then a resolved lane or a LaneRefused) or a clean HelperError, never a crash."""

from __future__ import annotations

import json
import random
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helper.contract.errors import HelperError, LaneRefused
from helper.contract.framing import MAX_FRAME
from helper.contract.identifiers import lane_name_findings
from helper.contract.lanes import parse_lanes
from helper.contract.protocol import TOKEN_VERBS, VERBS, Request, encode_request
from helper.resolve import resolve_lane
from tests.fakes.frames import parse_frame
from tests.helper.conftest import CANARY, HOST, LANE, lanes_toml

settings.register_profile(
    "helper-fuzz",
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings(settings.get_profile("helper-fuzz"))
DECLARED = parse_lanes(lanes_toml("/srv/launchplane/runners"))
FIELDS = ["version", "verb", "lane", "dry_run", "token", "archive_sha256"]

# Hypothesis's own cost per example dominates (about 0.5 ms with one draw on this machine),
# so every example is one draw of entropy bytes that a plain builder turns into a frame:
# each byte picks an option, and shrinking the bytes shrinks towards the first options.
NASTY: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**64,
    1.0,
    1.5,
    "",
    "1",
    "true",
    LANE,
    LANE.upper(),
    "../etc",
    "/etc/passwd",
    "a\x00b",
    "\ud800",
    "Ünïcode",
    CANARY,
    "0" * 64,
    "A" * 64,
    "x" * 200,
    [],
    {},
    [1],
    {"a": 1},
    [LANE],
    {"lane": LANE},
    *VERBS,
    "Status",
    "shell",
]
EXTRA_KEYS = ["extra", "Token", "verb ", "__class__", "", "unit", "path", "user", "argv"]
VALID = encode_request(
    Request.model_validate(
        {"version": 1, "verb": "register-runner", "lane": LANE, "dry_run": True, "token": CANARY}
    )
)


class Choices:
    def __init__(self, entropy: bytes) -> None:
        self.data, self.pos = entropy, 0

    def int(self, n: int) -> int:
        value = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return value % n

    def pick(self, options: list[Any]) -> Any:
        return options[self.int(len(options))]

    def rest(self) -> bytes:
        return self.data[self.pos :]


def request_like(c: Choices) -> dict[str, Any]:
    """Mostly-valid request objects with fields dropped, retyped or added."""
    obj: dict[str, Any] = {
        "version": c.pick([1, 1, 1, 2, 0, True, 1.0, "1"]),
        "verb": c.pick([*VERBS, *VERBS, *NASTY]),
        "lane": c.pick([LANE, LANE, "a", "a.b", "x-1", *NASTY]),
        "dry_run": c.pick([True, False, *NASTY]),
    }
    if c.int(2):
        obj["token"] = c.pick([CANARY, CANARY, *NASTY])
    if c.int(2):
        obj["archive_sha256"] = c.pick(["ab" * 32, *NASTY])
    for _ in range(c.int(3)):
        obj.pop(c.pick(FIELDS), None)
    if c.int(4) == 0:
        obj[c.pick(EXTRA_KEYS)] = c.pick(NASTY)
    return obj


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def build_frame(entropy: bytes) -> bytes:
    c = Choices(entropy)
    kind = c.int(5)
    if kind == 0:
        return frame(json.dumps(request_like(c)).encode())
    if kind == 1:
        return frame(json.dumps(c.pick(NASTY)).encode())
    if kind == 2:
        return frame(c.rest() or b"\x00")
    if kind == 3:
        data = bytearray(VALID)
        for _ in range(1 + c.int(4)):
            pos, op, byte = c.int(len(data)), c.int(3), c.int(256)
            if op == 0:
                data[pos] ^= byte or 1
            elif op == 1 and len(data) > 1:
                del data[pos]
            else:
                data.insert(pos, byte)
        return frame(bytes(data))
    header = c.pick([0, 1, 5, MAX_FRAME, MAX_FRAME + 1, 2**32 - 1])
    return struct.pack(">I", header) + c.rest()


def outcome(data: bytes) -> Request | HelperError:
    try:
        return parse_frame(data)
    except HelperError as exc:
        return exc


def resolved(request: Request) -> str | LaneRefused:
    try:
        return resolve_lane(DECLARED, request.lane, HOST).lane_name
    except LaneRefused as exc:
        return exc


@FUZZ
@given(st.binary(max_size=48))
def test_every_frame_parses_or_is_refused_cleanly(entropy: bytes) -> None:
    request = outcome(build_frame(entropy))
    if isinstance(request, HelperError):
        assert request.code != "internal"
        assert CANARY not in str(request)
        return
    assert request.version == 1
    assert request.verb in VERBS
    assert not lane_name_findings("lane", request.lane)
    assert (request.token is not None) == (request.verb in TOKEN_VERBS)
    assert CANARY not in repr(request)
    lane = resolved(request)
    if isinstance(lane, LaneRefused):
        assert lane.findings
    else:
        assert lane == request.lane == LANE


def test_the_frame_builder_reaches_every_outcome() -> None:
    """The fuzzer is only as good as its reach: a fixed sample hits every refusal and success."""
    rng = random.Random(1)
    seen: set[str] = set()
    for _ in range(3000):
        result = outcome(build_frame(rng.randbytes(rng.randint(0, 48))))
        seen.add(result.code if isinstance(result, HelperError) else "ok")
    assert seen >= {
        "ok",
        "unknown_verb",
        "request_invalid",
        "invalid_json",
        "invalid_utf8",
        "frame_too_large",
        "frame_truncated",
    }
