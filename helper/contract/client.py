"""The helper's client call: one request frame out, one response frame back, with a deadline."""

from __future__ import annotations

import contextlib
import socket
import time

from helper.contract.errors import FrameTimeout, FrameTruncated, HelperUnreachable, ProtocolError
from helper.contract.framing import HEADER, encode_frame, frame_length
from helper.contract.protocol import Request, Response, decode_response, encode_request


def _recv_exactly(sock: socket.socket, size: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FrameTimeout("no complete answer in time")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(size - len(buf))
        except TimeoutError:
            raise FrameTimeout("no complete answer in time") from None
        if not chunk:
            raise FrameTruncated("connection closed inside a frame")
        buf += chunk
    return bytes(buf)


def _connect(socket_path: str, deadline: float) -> socket.socket:
    """A connected socket. A full listen backlog (EAGAIN: the helper is busy) is retried,
    backing off up to 0.25 s, until `deadline`; any other failure is final."""
    pause = 0.01
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            sock.connect(socket_path)
        except BlockingIOError as exc:
            sock.close()
            if time.monotonic() + pause >= deadline:
                raise HelperUnreachable(
                    f"the helper at {socket_path} stayed busy: {exc.__class__.__name__}"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.25)
        except OSError as exc:
            sock.close()
            raise HelperUnreachable(
                f"cannot reach the helper at {socket_path}: {exc.__class__.__name__}"
            ) from None
        else:
            return sock


def call(socket_path: str, request: Request, timeout: float) -> Response:
    """Send one request and return the helper's Response (which may say ok=False).

    Raises HelperUnreachable when there is no connection, no complete answer within
    `timeout` seconds, or the answer is not a valid response.
    """
    deadline = time.monotonic() + timeout
    frame = encode_frame(encode_request(request))
    with _connect(socket_path, deadline) as sock:
        with contextlib.suppress(OSError):
            # A refused peer is answered before its frame is read: the write may break,
            # the refusal is still there to read.
            sock.sendall(frame)
        try:
            length = frame_length(_recv_exactly(sock, HEADER.size, deadline))
            return decode_response(_recv_exactly(sock, length, deadline))
        except (ProtocolError, OSError) as exc:
            code = exc.code if isinstance(exc, ProtocolError) else exc.__class__.__name__
            raise HelperUnreachable(f"no valid answer from the helper ({code})") from None
