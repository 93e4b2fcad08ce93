"""Frames: a 4-byte big-endian length, then that many bytes (1..65536) of strict UTF-8 JSON
holding one object (no duplicate keys, NaN, lone surrogates or deep nesting)."""

from __future__ import annotations

import json
import struct
from typing import Any

from helper.contract.errors import (
    FrameTooLarge,
    FrameTruncated,
    InvalidJson,
    InvalidUtf8,
    RequestInvalid,
)

MAX_FRAME = 64 * 1024
HEADER = struct.Struct(">I")
MAX_JSON_DEPTH = 32


def encode_frame(payload: bytes) -> bytes:
    if not 0 < len(payload) <= MAX_FRAME:
        raise FrameTooLarge(f"a frame body is 1..{MAX_FRAME} bytes, this one is {len(payload)}")
    return HEADER.pack(len(payload)) + payload


def frame_length(header: bytes) -> int:
    """The body length announced by a 4-byte header; refuses 0 and anything over MAX_FRAME."""
    if len(header) != HEADER.size:
        raise FrameTruncated("frame header is 4 bytes")
    (length,) = HEADER.unpack(header)
    if length == 0:
        raise RequestInvalid("empty frame")
    if length > MAX_FRAME:
        raise FrameTooLarge(f"frame of {length} bytes is over the {MAX_FRAME}-byte limit")
    return int(length)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidJson("duplicate key in JSON object")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise InvalidJson(f"{name} is not valid JSON")


def _check_strings(value: Any, depth: int = 0) -> None:
    """Every string (and key) must be encodable UTF-8 (no lone surrogates); depth is bounded."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidJson("JSON nested too deeply")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidUtf8("string escapes a lone surrogate") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, depth + 1)
            _check_strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, depth + 1)


def decode_json_object(payload: bytes) -> dict[str, Any]:
    """Strict UTF-8, strict JSON (no duplicate keys, NaN or Infinity), an object at the top."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUtf8("frame body is not valid UTF-8") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise InvalidJson("frame body is not valid JSON") from None
    _check_strings(obj)
    if not isinstance(obj, dict):
        raise InvalidJson("a frame body is one JSON object")
    return obj
