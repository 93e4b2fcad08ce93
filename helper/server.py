"""`launchplane-helper`: the socket-activated root helper (Accept=no); exits when idle.

Admission (issue 13): every connection is accepted and classified by SO_PEERCRED at once.
A refused peer is answered `peer_refused` and closed without taking a slot; root and the
agent have separate pools (`helper.admission`); a connection whose pool is full waits with
its frame unread; past MAX_HELD open connections the server stops accepting, so the excess
waits in the listen backlog instead of being reset. A connection that sends no header within
HEADER_SECONDS is answered `frame_timeout` and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import sdnotify

from helper.access import Peer, peer_of, role_of
from helper.admission import HEADER_SECONDS, Admission
from helper.config import HelperConfig
from helper.contract.errors import FrameTimeout, FrameTruncated
from helper.contract.framing import HEADER, encode_frame, frame_length
from helper.contract.logs import configure
from helper.contract.protocol import encode_response
from helper.handler import Handler, log_event

SD_LISTEN_FDS_START = 3
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


async def read_frame(
    reader: asyncio.StreamReader, timeout: float, header_timeout: float = HEADER_SECONDS
) -> bytes:
    """One frame body within `timeout` seconds in total, its header within `header_timeout`
    (an idle or slow peer is cut off)."""
    try:
        async with asyncio.timeout(timeout):
            async with asyncio.timeout(min(header_timeout, timeout)):
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
        admission = Admission()
        self.sock.setblocking(False)
        self.notify("READY=1\nSTATUS=waiting for requests")
        accepting = asyncio.create_task(self._accept(admission))
        try:
            await self._until_idle()
        finally:
            accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await accepting
            self.handler.close()
        self.notify(f"STOPPING=1\nSTATUS=idle, exiting after {self.served} requests")

    async def _accept(self, admission: Admission) -> None:
        """Accept while fewer than MAX_HELD connections are open; the backlog holds the rest."""
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        while True:
            await admission.held.acquire()
            try:
                conn, _ = await loop.sock_accept(self.sock)
            except OSError:  # EMFILE and the like: let the backlog hold them for a moment
                admission.held.release()
                await asyncio.sleep(0.1)
                continue
            self._touch(+1)
            task = asyncio.create_task(self._connection(conn, admission))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

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

    async def _connection(self, conn: socket.socket, admission: Admission) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            peer = peer_of(conn)
            role = role_of(peer.uid, self.handler.identities())
            async with admission.slot(role):
                reader, writer = await asyncio.open_unix_connection(sock=conn)
                await self._answer(peer, reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
            else:
                conn.close()
            admission.held.release()
            self._touch(-1)

    async def _answer(
        self, peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        response = await self.handler.handle(peer, lambda: read_frame(reader, self.frame_timeout))
        self.served += 1
        self.notify(f"STATUS=served {self.served} requests; last: {response.verb}")
        writer.write(encode_frame(encode_response(response)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(writer.drain(), self.frame_timeout)


def main(argv: list[str] | None = None) -> int:
    """Entry point under systemd: one socket passed (LISTEN_FDS=1), sd_notify READY=1."""
    del argv
    configure(json_output=True)  # the agent's set-up: JSON lines for the journal, redacted
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
    try:
        asyncio.run(server.serve())
    finally:
        server.handler.audit.sync()  # the read-only requests' lines, written without fsync
    log_event("exit", served=server.served)
    return 0


if __name__ == "__main__":
    sys.exit(main())
