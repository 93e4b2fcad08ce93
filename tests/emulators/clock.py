"""The emulator's clock: wall time plus an offset tests advance, or a frozen instant."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class EmulatorClock:
    """Thread-safe. `frozen` clocks move only by `advance`, so a test decides when a token
    expires, a session times out or a rate-limit window resets, without real waiting."""

    def __init__(self, start: float | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._frozen = frozen
        self._base = time.time() if start is None else start
        self._offset = 0.0
        self._started = time.time()

    def time(self) -> float:
        with self._lock:
            if self._frozen:
                return self._base + self._offset
            return self._base + (time.time() - self._started) + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        """Move time forward (an injected `sleep` for the adapter under test)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += seconds

    def offset(self) -> float:
        with self._lock:
            return self._offset

    def set_offset(self, offset: float) -> None:
        with self._lock:
            self._offset = offset
