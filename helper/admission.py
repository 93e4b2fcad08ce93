"""Who gets a connection slot: refused peers none; root, the agent and operators own pools."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from helper.access import Role

ROOT_SLOTS = 4
"""Connections of root served at once; the agent cannot take these."""
AGENT_SLOTS = 12
"""Connections of the agent served at once; root cannot be starved by them."""
OPERATOR_SLOTS = 2
"""Connections of the operators (read-only) served at once; they starve neither of the above."""
MAX_HELD = 256
"""Accepted connections (served or waiting for a slot) before the server stops accepting and
the kernel's listen backlog holds the rest (they wait there; nobody is reset)."""
HEADER_SECONDS = 1.0
"""A served connection must send its frame's 4-byte header within this (a client writes its
whole frame right after connect, usually before it is accepted); idle ones are closed."""


class Admission:
    """Per-role slot pools. A peer without a role is never admitted: it is answered with
    `peer_refused` at once, outside every pool. A role whose pool is full waits (FIFO) for a
    slot with its connection open; its frame is not read until then."""

    def __init__(self, root_slots: int = ROOT_SLOTS, agent_slots: int = AGENT_SLOTS) -> None:
        self._pools = {
            Role.ROOT: asyncio.Semaphore(root_slots),
            Role.AGENT: asyncio.Semaphore(agent_slots),
            Role.OPERATOR: asyncio.Semaphore(OPERATOR_SLOTS),
        }
        self.held = asyncio.Semaphore(MAX_HELD)

    @contextlib.asynccontextmanager
    async def slot(self, role: Role | None) -> AsyncIterator[None]:
        """A slot of `role`'s pool for the body of the block; none for a refused peer."""
        if role is None:
            yield
            return
        async with self._pools[role]:
            yield
