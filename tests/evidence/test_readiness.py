"""Type=notify readiness: `launchplane-evidence serve` sends READY=1 only once it accepts
connections (a request right after it must be answered), with one process and with several
workers; an empty PostgreSQL DSN credential fails instead of connecting to a default."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from evidence.settings import Settings

READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(READY_TIMEOUT)
    try:
        yield sock, path
    finally:
        sock.close()


def serve(tmp_path: Path, notify_path: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = tmp_path / "evidence.toml"
    config.write_text(
        f'store = "filesystem"\nstate_directory = "{tmp_path / "state"}"\n'
        f"listen_port = {port}\nworkers = {workers}\n"
    )
    env = {**os.environ, "NOTIFY_SOCKET": notify_path}
    cmd = [sys.executable, "-m", "evidence.cli", "--config", str(config), "serve"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def messages_until_ready(sock: socket.socket) -> list[str]:
    seen: list[str] = []
    while not any(m.startswith("READY=1") for m in seen):
        seen.append(sock.recv(4096).decode())
    return seen


@pytest.mark.parametrize("workers", [1, 2])
def test_ready_means_accepting(
    tmp_path: Path, notify_socket: tuple[socket.socket, str], workers: int
) -> None:
    sock, path = notify_socket
    proc, port = serve(tmp_path, path, workers)
    try:
        seen = messages_until_ready(sock)
        # No retry: READY=1 promised a listening socket.
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert answer.status_code == 200
        assert answer.json() == {"ok": True}
        assert f"STATUS=serving on 127.0.0.1:{port}" in seen[-1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    stopping = sock.recv(4096).decode()
    assert stopping == "STOPPING=1"


def test_no_ready_when_it_cannot_listen(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "evidence.toml"
        config.write_text(f'state_directory = "{tmp_path}"\nlisten_port = {port}\n')
        env = {**os.environ, "NOTIFY_SOCKET": path}
        cmd = [sys.executable, "-m", "evidence.cli", "--config", str(config), "serve"]
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode != 0
    sock.setblocking(False)
    leftover = []
    while True:
        try:
            leftover.append(sock.recv(4096).decode())
        except BlockingIOError:
            break
    assert not [m for m in leftover if "READY=1" in m]


def test_empty_dsn_credential_fails(tmp_path: Path) -> None:
    empty = tmp_path / "postgresql-dsn"
    empty.write_text("\n")
    settings = Settings(store="postgresql", postgresql_dsn_file=empty)
    with pytest.raises(ValueError, match="is empty"):
        settings.dsn()
