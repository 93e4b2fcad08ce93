"""A whole frame (header + body) to a Request as one pure function over bytes, for the protocol
tests and the fuzzer; the server reads the same header and body from its socket with
`frame_length` and `decode_request`."""

from __future__ import annotations

from helper.contract.errors import FrameTruncated, RequestInvalid
from helper.contract.framing import HEADER, frame_length
from helper.contract.protocol import Request, decode_request


def parse_frame(frame: bytes) -> Request:
    length = frame_length(frame[: HEADER.size])
    body = frame[HEADER.size :]
    if len(body) < length:
        raise FrameTruncated(f"frame announces {length} bytes, {len(body)} arrived")
    if len(body) > length:
        raise RequestInvalid("one request per connection: bytes follow the frame")
    return decode_request(body)
