"""A throwaway host for the helper: lanes.toml, registration root, unit dir, cache, audit log."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import secrets
import socket
import tarfile
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helper.access import Peer
from helper.config import HelperConfig
from helper.contract.protocol import Request, Response, encode_request
from helper.contract.redact import REDACTOR
from helper.handler import Handler
from helper.server import Server
from tests.fakes.systemd import FakeSystemd

HOST = "chris-testing"
LANE = "cm-website-chris-testing"
REPO = "cbusillo/odoo-tenant-cm-website"
SERVICE_USER = "launchplane-runner"
SERVICE_UID = 4242
AGENT_UID = 4343
OTHER_UID = 4444
CANARY = "CANARYtoken-AAAABBBBCCCCDDDD-0123456789"
LABELS = ["self-hosted", "launchplane", "launchplane-managed", HOST, "cm-website"]

FAKE_CONFIG_SH = """#!/bin/sh
# Stands in for the runner's config.sh: records (in $HOME, the runner directory) argv, where
# it ran from and whether the token came by env; writes .runner next to itself.
log="$HOME/config-calls.log"
printf 'ran-from:%s\\n' "$(dirname "$0")" >> "$log"
printf 'argv:%s\\n' "$*" >> "$log"
if [ -n "$ACTIONS_RUNNER_INPUT_TOKEN" ]; then echo "env-token:yes" >> "$log"; fi
t="$ACTIONS_RUNNER_INPUT_TOKEN"
printf 'token-sha:%s\\n' "$(printf %s "$t" | sha256sum | cut -c1-64)" >> "$log"
if [ "$1" = "remove" ]; then rm -f "$(dirname "$0")/.runner"; exit 0; fi
name=""; url=""
while [ $# -gt 0 ]; do
  case "$1" in --name) name="$2"; shift;; --url) url="$2"; shift;; esac; shift
done
printf '{"agentId": 7, "agentName": "%s", "gitHubUrl": "%s"}' "$name" "$url" \\
  > "$(dirname "$0")/.runner"
"""


def fake_config_tarball() -> bytes:
    return runner_tarball(
        {
            "./config.sh": FAKE_CONFIG_SH.encode(),
            "./run.sh": b"#!/bin/sh\nexit 0\n",
            "./bin/Runner.Listener": b"\x7fELF",
        }
    )


def out(response: Response) -> Any:
    """The result of a response, untyped for the tests' convenience."""
    return response.result


class FakeUsers:
    def __init__(self, users: dict[str, tuple[int, int]]) -> None:
        self.users = users

    def lookup(self, name: str) -> tuple[int, int] | None:
        return self.users.get(name)


def lanes_toml(root: str, **lane_overrides: Any) -> str:
    lane: dict[str, Any] = {
        "lane_name": LANE,
        "repository": REPO,
        "host_name": HOST,
        "registration_root": root,
        "service_user": SERVICE_USER,
        "labels": LABELS,
        "product": "cm-website",
    }
    lane.update(lane_overrides)
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in lane.items())
    return (
        textwrap.dedent(
            f"""\
        [policy]
        allowed_repositories = [{json.dumps(REPO)}]
        approved_hosts = [{json.dumps(HOST)}]
        allowed_registration_roots = [{json.dumps(root)}]
        allowed_service_users = [{json.dumps(SERVICE_USER)}]
        github_web_url = "http://127.0.0.1:9"

        [[lanes]]
        """
        )
        + body
        + "\n"
    )


def runner_tarball(files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return buf.getvalue()


@dataclass
class World:
    tmp: Path
    root: Path
    unit_dir: Path
    cache: Path
    audit_log: Path
    lanes_file: Path
    systemd: FakeSystemd
    users: FakeUsers
    host: str = HOST
    stderr: list[str] = field(default_factory=list)

    @property
    def lane_dir(self) -> Path:
        return self.root / LANE

    @property
    def dropin(self) -> Path:
        return self.unit_dir / f"launchplane-runner@{LANE}.service.d" / "50-lane.conf"

    def config(self) -> HelperConfig:
        return HelperConfig(
            lanes_file=str(self.lanes_file),
            unit_dir=str(self.unit_dir),
            audit_log=str(self.audit_log),
            runner_cache_dir=str(self.cache),
            idle_timeout=0.05,
            frame_timeout=0.5,
            job_timeout=5,
            step_timeout=30,
        )

    def handler(self) -> Handler:
        return Handler(
            self.config(),
            systemd=self._systemd_cm,
            users=self.users,
            host_name=lambda: self.host,
        )

    def _systemd_cm(self) -> Any:
        import contextlib

        @contextlib.asynccontextmanager
        async def cm() -> Any:
            yield self.systemd

        return cm()

    def write_lanes(self, **overrides: Any) -> None:
        self.lanes_file.write_text(lanes_toml(str(self.root), **overrides))

    def make_lane_dir(self, *, registered: bool = False, installed: bool = True) -> Path:
        self.lane_dir.mkdir(exist_ok=True)
        if installed:
            (self.lane_dir / "config.sh").write_text(FAKE_CONFIG_SH)
            (self.lane_dir / "config.sh").chmod(0o755)
            (self.lane_dir / "run.sh").write_text("#!/bin/sh\nexit 0\n")
            (self.lane_dir / "run.sh").chmod(0o755)
            sha = self.cache_archive(fake_config_tarball())  # what install-runner records
            (self.lane_dir / ".launchplane-archive").write_text(sha + "\n")
        if registered:
            self.write_runner_file(LANE)
        os.chown(self.lane_dir, SERVICE_UID, SERVICE_UID)
        return self.lane_dir

    def write_runner_file(self, name: str, url: str | None = None) -> None:
        data = {"agentId": 1, "agentName": name, "gitHubUrl": url or f"http://127.0.0.1:9/{REPO}"}
        (self.lane_dir / ".runner").write_bytes(b"\xef\xbb\xbf" + json.dumps(data).encode())

    def cache_archive(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        (self.cache / f"{sha}.tar.gz").write_bytes(data)
        return sha

    def ask(
        self,
        verb: str,
        *,
        dry_run: bool = True,
        uid: int | None = 0,
        lane: str = LANE,
        **fields: Any,
    ) -> Response:
        request = Request.model_validate(
            {"version": 1, "verb": verb, "lane": lane, "dry_run": dry_run, **fields}
        )
        return self.ask_raw(encode_request(request), uid=uid)

    def ask_raw(self, payload: bytes, *, uid: int | None = 0) -> Response:
        async def read() -> bytes:
            return payload

        return asyncio.run(self.handler().handle(Peer(uid=uid, gid=uid, pid=123), read))

    def audit_lines(self) -> list[dict[str, Any]]:
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines()]


@pytest.fixture
def world(tmp_path: Path) -> World:
    if os.geteuid() != 0:
        pytest.skip("the helper's file-ownership checks need root (chown)")
    tmp_path.chmod(0o755)
    root = tmp_path / "srv" / "runners"
    root.mkdir(parents=True)
    (tmp_path / "srv").chmod(0o755)
    unit_dir = tmp_path / "etc" / "systemd" / "system"
    unit_dir.mkdir(parents=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    w = World(
        tmp=tmp_path,
        root=root,
        unit_dir=unit_dir,
        cache=cache,
        audit_log=tmp_path / "log" / "helper.jsonl",
        lanes_file=tmp_path / "lanes.toml",
        systemd=FakeSystemd(),
        users=FakeUsers(
            {SERVICE_USER: (SERVICE_UID, SERVICE_UID), "launchplane-agent": (AGENT_UID, AGENT_UID)}
        ),
    )
    w.write_lanes()
    return w


def abstract_socket() -> tuple[socket.socket, str]:
    name = f"launchplane-test-{secrets.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("\0" + name)
    sock.listen(8)
    return sock, name


def serve_while(
    world: World, client: Callable[[str], Awaitable[Any]], *, idle: float = 5.0
) -> tuple[Any, list[str]]:
    """Run the server on a fresh abstract socket while `client(name)` runs; then stop it."""
    notes: list[str] = []
    sock, name = abstract_socket()

    async def main() -> Any:
        server = Server(world.handler(), sock, idle, 0.3, notes.append)
        task = asyncio.create_task(server.serve())
        try:
            return await client(name)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    try:
        return asyncio.run(main()), notes
    finally:
        sock.close()


@pytest.fixture(autouse=True)
def _isolated_redactor() -> Iterator[None]:
    """Tests register many "tokens" (the fuzzer even registers lane names): undo it after."""
    saved = REDACTOR._forms
    yield
    REDACTOR._forms = saved
