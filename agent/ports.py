"""The executor's ports: GitHub, the root helper and systemd's view of units."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from dbus_fast.errors import DBusError
from pydantic import JsonValue, SecretStr

from agent.classify import UNIT_UNKNOWN
from agent.contracts import GithubInventory, GithubLabel, GithubRunner, UnitState
from agent.errors import StepFailed
from agent.github.models import RequestStats, RunnerDownload, RunnerToken
from agent.github.settings import GitHubSettings
from agent.logs import get_logger
from agent.observe_unit import observe_unit
from helper.contract.errors import SystemdFailed
from helper.contract.lanes import RunnerLaneMaintainerDesiredState
from helper.contract.protocol import DEFAULT_SOCKET, PROTOCOL_VERSION, Request, call
from helper.contract.systemd import DbusSystemd

log = get_logger("launchplane.agent")


class GitHubPort(Protocol):
    settings: GitHubSettings
    stats: RequestStats

    def list_runners(self, repository: str) -> list[GithubRunner]: ...
    def runners_named(self, repository: str, name: str) -> GithubInventory: ...
    def delete_runner(self, repository: str, runner_id: int) -> bool: ...
    def registration_token(self, repository: str) -> RunnerToken: ...
    def remove_token(self, repository: str) -> RunnerToken: ...
    def runner_downloads(self, repository: str) -> list[RunnerDownload]: ...
    def download_runner(self, download: RunnerDownload, directory: Path) -> Path: ...
    def set_custom_labels(
        self, repository: str, runner_id: int, labels: Sequence[str]
    ) -> tuple[GithubLabel, ...]: ...


class HelperPort(Protocol):
    def call(
        self,
        verb: str,
        lane: str,
        *,
        token: SecretStr | None = None,
        archive_sha256: str | None = None,
    ) -> dict[str, JsonValue]: ...


class UnitObserver(Protocol):
    def observe(
        self, lanes: Sequence[RunnerLaneMaintainerDesiredState]
    ) -> dict[str, UnitState]: ...


class SocketHelper:
    """The helper over its Unix socket; an error response becomes StepFailed naming the verb."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = 300.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def call(
        self,
        verb: str,
        lane: str,
        *,
        token: SecretStr | None = None,
        archive_sha256: str | None = None,
    ) -> dict[str, JsonValue]:
        request = Request.model_validate(
            {
                "version": PROTOCOL_VERSION,
                "verb": verb,
                "lane": lane,
                "dry_run": False,
                "token": token,
                "archive_sha256": archive_sha256,
            }
        )
        response = call(self.socket_path, request, self.timeout)
        if response.error is not None:
            reason = f" ({response.error.reason})" if response.error.reason else ""
            raise StepFailed(verb, f"{response.error.code}{reason}: {response.error.message}")
        return response.result


class DbusUnitObserver:
    """Reads every lane's unit over one system-bus connection per call."""

    def __init__(
        self,
        bus_address: str | None = None,
        unit_dir: str = "/etc/systemd/system",
        proc_root: str = "/proc",
    ) -> None:
        self.bus_address = bus_address
        self.unit_dir = unit_dir
        self.proc_root = proc_root

    async def _observe(
        self, lanes: Sequence[RunnerLaneMaintainerDesiredState]
    ) -> dict[str, UnitState]:
        async with DbusSystemd.connect(self.bus_address) as systemd:
            return {
                lane.lane_name: await observe_unit(
                    systemd, lane, unit_dir=self.unit_dir, proc_root=self.proc_root
                )
                for lane in lanes
            }

    def observe(self, lanes: Sequence[RunnerLaneMaintainerDesiredState]) -> dict[str, UnitState]:
        """Every lane's unit; if systemd cannot be reached, each is `unknown` (which blocks)."""
        try:
            return asyncio.run(self._observe(lanes))
        except (OSError, DBusError, SystemdFailed, ValueError) as exc:
            log.warning("systemd.unreachable", error=type(exc).__name__)
            return {
                lane.lane_name: UnitState(
                    unit_name=lane.systemd_unit_name,
                    load_state=UNIT_UNKNOWN,
                    active_state="unknown",
                    sub_state="unknown",
                    unit_file_state="",
                )
                for lane in lanes
            }
