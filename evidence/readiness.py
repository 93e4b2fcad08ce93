"""systemd readiness (Type=notify): READY=1 only once the service accepts connections."""

from __future__ import annotations

import os
import socket

import sdnotify
import uvicorn
from uvicorn.supervisors import Multiprocess


def notify(message: str) -> None:
    """sd_notify(MESSAGE) when started by systemd with a notify socket; nothing otherwise."""
    if os.environ.get("NOTIFY_SOCKET"):
        sdnotify.SystemdNotifier().notify(message)


class NotifyingServer(uvicorn.Server):
    """uvicorn's server, telling systemd it is ready after its sockets listen."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            where = f"{self.config.host}:{self.config.port}"
            notify(f"READY=1\nSTATUS=serving on {where}")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Here, not after run(): uvicorn re-raises the captured SIGTERM once it returns.
        notify("STOPPING=1")
        await super().shutdown(sockets=sockets)


def run(config: uvicorn.Config) -> bool:
    """Serve CONFIG until told to stop; False if it never started.

    One process: READY=1 after uvicorn's startup (app loaded, store open, socket
    listening). Several workers: the parent binds and listens before it forks them, so
    READY=1 follows the listen; connections wait in the backlog until a worker accepts
    (the parent is the unit's main process: NotifyAccess=main suffices)."""
    if config.workers > 1:
        sock = config.bind_socket()
        sock.listen(config.backlog)
        notify(f"READY=1\nSTATUS=serving on {config.host}:{config.port}, {config.workers} workers")
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            notify("STOPPING=1")
        return True
    server = NotifyingServer(config)
    server.run()
    return server.started
