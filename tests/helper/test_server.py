"""The server over real Unix sockets: peers with real uids, slow and oversized frames, idle
exit, socket activation's LISTEN_FDS, and sd_notify."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
from typing import Any

import pytest

from helper.contract.client import call
from helper.contract.errors import HelperUnreachable
from helper.contract.framing import MAX_FRAME, encode_frame
from helper.contract.protocol import Request, Response, decode_response
from helper.server import Server, listen_fds, listening_socket
from tests.helper.conftest import AGENT_UID, LANE, OTHER_UID, World, abstract_socket, serve_while

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")
# A client that needs nothing but the standard library, so it can run as any uid.
RAW_CLIENT = """
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect("\\0" + sys.argv[1])
try:
    s.sendall(bytes.fromhex(sys.argv[2]))
except OSError:
    pass
data = b""
while chunk := s.recv(65536):
    data += chunk
sys.stdout.write(data[4:].decode())
"""


def status_request() -> Request:
    return Request(version=1, verb="status", lane=LANE, dry_run=True)


def raw_exchange(name: str, data: bytes, *, uid: int | None = None) -> Response:
    if uid is None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect("\0" + name)
            with contextlib.suppress(OSError):
                s.sendall(data)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return decode_response(b"".join(chunks)[4:])
    assert SYSTEM_PYTHON is not None
    out = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", RAW_CLIENT, name, data.hex()],
        user=uid,
        group=uid,
        extra_groups=[],
        capture_output=True,
        check=True,
        timeout=20,
    )
    return decode_response(out.stdout)


def status_frame() -> bytes:
    body = json.dumps({"version": 1, "verb": "status", "lane": LANE, "dry_run": True})
    return encode_frame(body.encode())


def test_root_is_served_over_a_real_socket_with_call(world: World) -> None:
    async def client(name: str) -> Response:
        return await asyncio.to_thread(call, "\0" + name, status_request(), 5)

    response, notes = serve_while(world, client)
    assert response.ok
    assert notes[0].startswith("READY=1")
    assert any(n.startswith("STATUS=served 1") for n in notes)
    assert world.audit_lines()[-1]["peer_pid"] == os.getpid()


needs_uid_switch = pytest.mark.skipif(
    SYSTEM_PYTHON is None or os.geteuid() != 0, reason="needs root and /usr/bin/python3"
)


@needs_uid_switch
def test_another_uid_is_refused_before_its_frame_is_read(world: World) -> None:
    oversized = struct.pack(">I", MAX_FRAME + 1)  # would be frame_too_large if it were read

    async def client(name: str) -> Response:
        return await asyncio.to_thread(raw_exchange, name, oversized, uid=OTHER_UID)

    response, _ = serve_while(world, client)
    assert response.error is not None
    assert response.error.code == "peer_refused"
    line = world.audit_lines()[-1]
    assert (line["peer_uid"], line["code"], line["verb"]) == (OTHER_UID, "peer_refused", None)


@needs_uid_switch
def test_the_agent_uid_is_served(world: World) -> None:
    async def client(name: str) -> Response:
        return await asyncio.to_thread(raw_exchange, name, status_frame(), uid=AGENT_UID)

    response, _ = serve_while(world, client)
    assert response.ok
    assert world.audit_lines()[-1]["peer_uid"] == AGENT_UID


def test_an_oversized_frame_is_refused_without_reading_it(world: World) -> None:
    async def client(name: str) -> Response:
        data = struct.pack(">I", MAX_FRAME + 1) + b"x" * 1024
        return await asyncio.to_thread(raw_exchange, name, data)

    response, _ = serve_while(world, client)
    assert response.error is not None
    assert response.error.code == "frame_too_large"


def test_a_slow_frame_is_cut_off(world: World) -> None:
    async def client(name: str) -> Response:
        frame = status_frame()
        return await asyncio.to_thread(raw_exchange, name, frame[:6])  # then nothing

    response, _ = serve_while(world, client)
    assert response.error is not None
    assert response.error.code == "frame_timeout"


def test_invalid_utf8_over_the_socket(world: World) -> None:
    async def client(name: str) -> Response:
        return await asyncio.to_thread(raw_exchange, name, encode_frame(b'{"verb":"\xff"}'))

    response, _ = serve_while(world, client)
    assert response.error is not None
    assert response.error.code == "invalid_utf8"


def test_a_stalled_client_does_not_block_others(world: World) -> None:
    async def client(name: str) -> Response:
        staller = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staller.connect("\0" + name)
        staller.sendall(b"\0\0")
        try:
            return await asyncio.to_thread(call, "\0" + name, status_request(), 5)
        finally:
            staller.close()

    response, _ = serve_while(world, client)
    assert response.ok


def test_the_server_exits_when_idle(world: World) -> None:
    notes: list[str] = []
    sock, _ = abstract_socket()
    with sock:
        server = Server(world.handler(), sock, 0.05, 0.3, notes.append)
        asyncio.run(asyncio.wait_for(server.serve(), 5))
    assert notes[0].startswith("READY=1")
    assert notes[-1].startswith("STOPPING=1")


def test_call_reports_an_unreachable_helper(tmp_path: Any) -> None:
    with pytest.raises(HelperUnreachable, match="cannot reach"):
        call(str(tmp_path / "nothing.sock"), status_request(), 1)


def test_call_reports_garbage_as_unreachable() -> None:
    sock, name = abstract_socket()

    def garbage() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(encode_frame(b'{"not": "a response"}'))

    async def main() -> None:
        server = asyncio.to_thread(garbage)
        with pytest.raises(HelperUnreachable, match="no valid answer"):
            await asyncio.gather(server, asyncio.to_thread(call, "\0" + name, status_request(), 5))

    with sock:
        asyncio.run(main())


def test_listen_fds_only_for_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    marked: list[tuple[int, bool]] = []
    monkeypatch.setattr(os, "set_inheritable", lambda fd, flag: marked.append((fd, flag)))
    env = {"LISTEN_PID": "123", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x"}
    assert listen_fds(dict(env), pid=999) == []
    assert listen_fds({"LISTEN_PID": "123", "LISTEN_FDS": "junk"}, pid=123) == []
    mine = dict(env)
    assert listen_fds(mine, pid=123) == [3]
    assert mine == {}  # unset, as sd_listen_fds(1) does
    assert marked == [(3, False)]  # not inherited by anything the helper might start


def test_only_a_listening_unix_stream_socket_is_accepted() -> None:
    a, b = socket.socketpair()
    with a, b, pytest.raises(ValueError, match="not a listening"):
        listening_socket(a.fileno())
    sock, _ = abstract_socket()
    with sock:
        wrapped = listening_socket(os.dup(sock.fileno()))
        wrapped.close()
