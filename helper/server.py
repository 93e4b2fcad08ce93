"""`launchplane-helper`: the socket-activated root helper (Accept=no); exits when idle."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import sdnotify

from helper.access import peer_of
from helper.config import HelperConfig
from helper.contract.errors import FrameTimeout, FrameTruncated
from helper.contract.framing import HEADER, encode_frame, frame_length
from helper.contract.protocol import encode_response
from helper.handler import Handler, log_event

SD_LISTEN_FDS_START = 3
MAX_CONNECTIONS = 16
Notify = Callable[[str], Any]


def listen_fds(
    environ: MutableMapping[str, str] | None = None, pid: int | None = None
) -> list[int]:
    """sd_listen_fds(unset=1): the descriptors systemd passed to *this* process, from fd 3."""
    env = os.environ if environ is None else environ
    if env.get("LISTEN_PID") != str(os.getpid() if pid is None else pid):
        return []
    try:
        count = int(env.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(key, None)
    fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + max(count, 0)))
    for fd in fds:
        os.set_inheritable(fd, False)
    return fds


def listening_socket(fd: int) -> socket.socket:
    """Wrap a passed descriptor; it must be a listening AF_UNIX stream socket."""
    sock = socket.socket(fileno=fd)
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()
        raise ValueError(f"fd {fd} is not a listening AF_UNIX stream socket")
    return sock


async def read_frame(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """One frame body within `timeout` seconds in total (a slow peer is cut off)."""
    try:
        async with asyncio.timeout(timeout):
            header = await reader.readexactly(HEADER.size)
            return await reader.readexactly(frame_length(header))
    except TimeoutError:
        raise FrameTimeout(f"no complete frame within {timeout:g} s") from None
    except asyncio.IncompleteReadError:
        raise FrameTruncated("connection closed inside a frame") from None


class Server:
    """Serves connections from a bound, listening socket until idle for `idle_timeout`."""

    def __init__(
        self,
        handler: Handler,
        sock: socket.socket,
        idle_timeout: float,
        frame_timeout: float,
        notify: Notify = lambda _: None,
    ) -> None:
        self.handler = handler
        self.sock = sock
        self.idle_timeout = idle_timeout
        self.frame_timeout = frame_timeout
        self.notify = notify
        self.served = 0
        self._active = 0
        self._wake: asyncio.Event | None = None

    async def serve(self) -> None:
        self._wake = asyncio.Event()
        server = await asyncio.start_unix_server(self._client, sock=self.sock)
        self.notify("READY=1\nSTATUS=waiting for requests")
        async with server:
            await self._until_idle()
            server.close()
        self.notify(f"STOPPING=1\nSTATUS=idle, exiting after {self.served} requests")

    async def _until_idle(self) -> None:
        wake = self._wake = self._wake or asyncio.Event()
        while True:
            wake.clear()
            if self._active:
                await wake.wait()
                continue
            try:
                await asyncio.wait_for(wake.wait(), self.idle_timeout)
            except TimeoutError:
                if not self._active:
                    return

    def _touch(self, delta: int) -> None:
        self._active += delta
        if self._wake is not None:
            self._wake.set()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._touch(+1)
        try:
            if self._active > MAX_CONNECTIONS:
                return
            peer = peer_of(writer.get_extra_info("socket"))
            response = await self.handler.handle(
                peer, lambda: read_frame(reader, self.frame_timeout)
            )
            self.served += 1
            self.notify(f"STATUS=served {self.served} requests; last: {response.verb}")
            writer.write(encode_frame(encode_response(response)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer.drain(), self.frame_timeout)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            self._touch(-1)


def main(argv: list[str] | None = None) -> int:
    """Entry point under systemd: one socket passed (LISTEN_FDS=1), sd_notify READY=1."""
    del argv
    config = HelperConfig.from_env()
    fds = listen_fds()
    if len(fds) != 1:
        print(
            "launchplane-helper: expected exactly one socket from systemd (LISTEN_FDS=1); "
            "start it through launchplane-helper.socket",
            file=sys.stderr,
        )
        return 2
    try:
        sock = listening_socket(fds[0])
    except (OSError, ValueError) as exc:
        print(f"launchplane-helper: {exc}", file=sys.stderr)
        return 2
    notifier = sdnotify.SystemdNotifier()
    server = Server(
        Handler(config), sock, config.idle_timeout, config.frame_timeout, notifier.notify
    )
    log_event("start", lanes_file=config.lanes_file, idle_timeout=config.idle_timeout)
    asyncio.run(server.serve())
    log_event("exit", served=server.served)
    return 0


if __name__ == "__main__":
    sys.exit(main())
