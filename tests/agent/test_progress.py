"""Progress (issue 15): systemd's STATUS= at each step of a pass, received by a real AF_UNIX
datagram socket standing in for systemd's notify socket, and the same steps on a terminal."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.progress import NotifyProgress, Tee, TerminalProgress
from tests.agent.fakes import agent_for
from tests.planner import factories as f


class NotifyListener:
    """What systemd does with its notify socket: read every datagram as it arrives (a
    datagram queue holds only a few; systemd drains it, and so does this thread)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.lines: list[str] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stopped.is_set():
            try:
                self.lines.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def received(self) -> list[str]:
        """Everything sent so far (the queue drained first)."""
        self.stopped.set()
        self.thread.join()
        self.sock.settimeout(0)
        while True:
            try:
                self.lines.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.lines


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    """What systemd listens on for sd_notify: NOTIFY_SOCKET names it."""
    listener = NotifyListener(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    try:
        yield listener
    finally:
        listener.stopped.set()
        listener.sock.close()


def in_order(seen: list[str], expected: list[str]) -> bool:
    """Every expected line appears, in this order (others may come between)."""
    rest = iter(seen)
    return all(any(line == want for line in rest) for want in expected)


def test_a_pass_reports_each_step_as_status_in_order(
    tmp_path: Path, notify_socket: NotifyListener
) -> None:
    agent, _, _ = agent_for(tmp_path, progress=NotifyProgress(), apply=True)
    (record,) = agent.reconcile_pass()
    assert record.status == "completed", record.error
    seen = notify_socket.received()
    assert all(line.startswith("STATUS=") for line in seen)
    lane = f"STATUS=lane {f.LANE}"
    expected = [
        "STATUS=observing 1 of 1 lanes",
        f"{lane}: planning",
        f"{lane}: create: 8 steps",
        f"{lane}: step 1/7: fetch_registration_token",
        f"{lane}: step 7/7: enable_now",
        f"{lane}: waiting for GitHub online (0 s)",
        f"{lane}: observing the running lane and its baseline",
        f"{lane}: stability window (4 s), then again",
        f"{lane}: completed",
    ]
    assert in_order(seen, expected), seen
    assert not in_order(seen, list(reversed(expected)))  # the check can tell order


def test_a_failed_gate_is_named_in_the_status(
    tmp_path: Path, notify_socket: NotifyListener
) -> None:
    agent, world, _ = agent_for(tmp_path, progress=NotifyProgress(), apply=True)
    world.online_when_running = False
    (record,) = agent.reconcile_pass()
    assert record.status == "failed"
    assert (
        notify_socket.received()[-1] == f"STATUS=lane {f.LANE}: failed (github_exactly_one_online)"
    )


def test_without_a_notify_socket_nothing_is_sent_and_nothing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    agent, _, _ = agent_for(tmp_path, progress=NotifyProgress(), apply=True)
    (record,) = agent.reconcile_pass()
    assert record.status == "completed"


def test_a_terminal_rewrites_a_waiting_line_and_adds_a_line_per_step() -> None:
    out = io.StringIO()
    term = TerminalProgress(out)
    sinks = Tee((term,))
    sinks.step("a", "step 1/2: install_runner")
    sinks.step("a", "waiting for GitHub online (0 s)")
    sinks.step("a", "waiting for GitHub online (2 s)")
    sinks.step("a", "completed")
    sinks.end()
    assert out.getvalue() == (
        "lane a: step 1/2: install_runner\n"
        "lane a: waiting for GitHub online (0 s)"
        "\r\x1b[Klane a: waiting for GitHub online (2 s)\n"
        "lane a: completed\n"
    )
