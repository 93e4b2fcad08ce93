"""The agent's ports: interfaces of every outside thing a phase reads or changes (no adapters)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from agent.contracts import (
    BaselineFinding,
    BaselineState,
    GithubInventory,
    GithubLabel,
    GithubRunner,
    HostPolicy,
    LocalRunnerDirectory,
    RunnerLaneMaintainerAuditRecord,
    RunnerVersions,
    UnitState,
)
from agent.github.models import RequestStats, RunnerDownload, RunnerToken
from agent.github.settings import GitHubSettings
from agent.schedule import Schedule
from helper.contract.lanes import RunnerLaneMaintainerDesiredState
from helper.contract.protocol import Verb, VerbResult

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class DockerVersions:
    """The host facts a pass probes once: Docker's versions as the host reports them (None
    where absent or unreachable), and what actions/runner needs of the OS that is missing."""

    engine: str | None
    cli: str | None
    buildx: str | None
    os_findings: tuple[BaselineFinding, ...] = ()


class GitHubPort(Protocol):
    settings: GitHubSettings
    stats: RequestStats

    def list_runners(self, repository: str) -> list[GithubRunner]: ...
    def runners_named(
        self, repository: str, name: str, *, fresh: bool = False
    ) -> GithubInventory: ...
    def delete_runner(self, repository: str, runner_id: int) -> bool: ...
    def registration_token(self, repository: str) -> RunnerToken: ...
    def remove_token(self, repository: str) -> RunnerToken: ...
    def runner_downloads(self, repository: str) -> list[RunnerDownload]: ...
    def download_runner(self, download: RunnerDownload, directory: Path) -> Path: ...
    def set_custom_labels(
        self, repository: str, runner_id: int, labels: Sequence[str]
    ) -> tuple[GithubLabel, ...]: ...
    def runner_group_id(self, organization: str, name: str) -> int | None: ...


class HelperPort(Protocol):
    """The root helper: one verb for one lane; an error answer raises PlanStepFailed."""

    def call(
        self,
        verb: Verb,
        lane: str,
        *,
        token: SecretStr | None = None,
        archive_sha256: str | None = None,
    ) -> VerbResult: ...


class ReleasePort(Protocol):
    """Runner releases: the newest GitHub offers (checked now and then, or at once when
    `fresh`), and the installed version from the archive record or GitHub's `version`."""

    def versions(
        self,
        repository: str,
        installed_sha256: str | None,
        github_version: str | None,
        *,
        fresh: bool = False,
    ) -> RunnerVersions: ...


class UnitObserver(Protocol):
    def observe(
        self, lanes: Sequence[RunnerLaneMaintainerDesiredState]
    ) -> dict[str, UnitState]: ...


class HostPort(Protocol):
    """This machine as the agent reads it: its name, users, runner directories, Docker, baseline."""

    def host_name(self) -> str: ...
    def user_uid(self, name: str) -> int | None: ...
    def runner_directory(
        self, desired: RunnerLaneMaintainerDesiredState
    ) -> LocalRunnerDirectory: ...
    def docker(self) -> DockerVersions: ...
    def baseline(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        policy: HostPolicy,
        now: datetime,
        versions: DockerVersions,
    ) -> BaselineState: ...


class AuditStore(Protocol):
    def append(
        self, record: RunnerLaneMaintainerAuditRecord
    ) -> RunnerLaneMaintainerAuditRecord: ...
    def get(
        self, record_id: str, lane_name: str | None = None
    ) -> RunnerLaneMaintainerAuditRecord: ...
    def records(
        self, lane_name: str | None = None
    ) -> Iterator[RunnerLaneMaintainerAuditRecord]: ...
    def latest(self, lane_name: str) -> RunnerLaneMaintainerAuditRecord | None: ...
    def latest_completed(self, lane_name: str) -> RunnerLaneMaintainerAuditRecord | None: ...
    def by_key(
        self, lane_name: str, idempotency_key: str, status: str
    ) -> RunnerLaneMaintainerAuditRecord | None: ...
    def prune(self, before: datetime) -> int: ...


class EvidenceSink(Protocol):
    def add(self, record: RunnerLaneMaintainerAuditRecord) -> None: ...


class Progress(Protocol):
    """Where a pass says what it is doing now (systemd's STATUS=, a terminal, nowhere):
    `lane` is None for the pass as a whole. The phases never know which medium it is."""

    def step(self, lane: str | None, message: str) -> None: ...


class _Silent:
    """The null progress sink: the phases' default, for callers that show no progress."""

    def step(self, lane: str | None, message: str) -> None:
        return None


SILENT: Progress = _Silent()


class SchedulePort(Protocol):
    """Where the lanes' next looks are kept between passes."""

    def load(self) -> Schedule: ...
    def save(self, schedule: Schedule) -> None: ...
