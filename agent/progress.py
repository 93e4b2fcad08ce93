"""Progress sinks (adapters of `ports.Progress`): systemd's STATUS=, a terminal, several."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TextIO

import sdnotify

from agent.ports import Progress
from helper.contract.redact import REDACTOR


def progress_line(lane: str | None, message: str) -> str:
    """`lane X: waiting for GitHub online (12 s)`, or the message alone for the whole pass."""
    return REDACTOR.redact(message if lane is None else f"lane {lane}: {message}")


class NotifyProgress:
    """`STATUS=` through sd_notify to $NOTIFY_SOCKET (systemctl status shows the last one);
    nothing at all when there is no such socket (run by hand). Never waits: a status that
    finds systemd's queue full is dropped (the next one replaces it anyway)."""

    def __init__(self) -> None:
        self._notifier = sdnotify.SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None
        if self._notifier is not None and self._notifier.socket is not None:
            self._notifier.socket.setblocking(False)

    def step(self, lane: str | None, message: str) -> None:
        if self._notifier is not None:
            line = progress_line(lane, message).replace("\n", " ")
            self._notifier.notify(f"STATUS={line}")


@dataclass
class TerminalProgress:
    """One line per step on a terminal; a step that repeats itself with a new figure (a
    wait's seconds) rewrites its line instead of adding one. `end()` closes the last line."""

    stream: TextIO
    _last: str | None = field(default=None, init=False)

    def step(self, lane: str | None, message: str) -> None:
        line = progress_line(lane, message)
        key = line.split(" (", 1)[0]
        if key == self._last:
            self.stream.write(f"\r\x1b[K{line}")
        else:
            self.stream.write(("\n" if self._last is not None else "") + line)
        self._last = key
        self.stream.flush()

    def end(self) -> None:
        if self._last is not None:
            self.stream.write("\n")
            self.stream.flush()
            self._last = None


@dataclass(frozen=True)
class Tee:
    """Every step to each sink."""

    sinks: tuple[Progress, ...]

    def step(self, lane: str | None, message: str) -> None:
        for sink in self.sinks:
            sink.step(lane, message)

    def end(self) -> None:
        for sink in self.sinks:
            if isinstance(sink, TerminalProgress):
                sink.end()
