"""An in-memory world for the agent's phases: GitHub, the helper and systemd keep their
semantics (404 on a missing runner, registration offline until the service runs, drop-ins on
disk)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import JsonValue, SecretStr

from agent.audit_store import FilesystemAuditStore
from agent.contracts import (
    BaselineState,
    GithubInventory,
    GithubLabel,
    GithubRunner,
    HostPolicy,
    LanesFile,
    LocalRunnerDirectory,
    ProcessFacts,
    UnitState,
)
from agent.errors import PlanStepFailed
from agent.github.models import RequestStats, RunnerDownload, RunnerToken
from agent.github.payloads import inventory_named
from agent.github.settings import GitHubSettings
from agent.observe_local import observe_directory
from agent.ports import SILENT, DockerVersions, Progress
from agent.reconcile import Reconciler
from agent.schedule import Schedule
from agent.unit_states import ActiveState, ListenerLog, LoadState, UnitFileState
from agent.wiring import assemble
from helper.contract.dropin import dropin_dir_name, render_dropin
from helper.contract.lanes import RunnerLaneMaintainerDesiredState
from helper.contract.protocol import Verb, VerbResult
from tests.planner import factories as f

UID = os.getuid()
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass
class World:
    root: Path
    unit_dir: Path
    runners: dict[int, GithubRunner] = field(default_factory=dict)
    next_id: int = 100
    unit_active: bool = False
    unit_enabled: bool = False
    main_pid_uid: int = UID
    online_when_running: bool = True
    baseline_findings: tuple[Any, ...] = ()
    baseline_missing: bool = False
    tokens_issued: list[str] = field(default_factory=list)
    helper_calls: list[str] = field(default_factory=list)
    fail_verb: str | None = None
    runner_groups: dict[str, int] = field(default_factory=dict)  # organization runner groups
    misplace_group: int | None = None  # register into this group whatever the lane declares
    release: str = "2.330.0"  # the runner release GitHub offers
    fail_archive: str | None = None  # install-runner of this archive fails
    busy_polls: int = 0  # the runner stays busy for this many more runners_named() polls

    def set_busy(self, busy: bool) -> None:
        for rid, r in self.runners.items():
            self.runners[rid] = r.model_copy(update={"busy": busy})

    def lane_dir(self, lane: str) -> Path:
        return self.root / lane

    def set_online(self, online: bool) -> None:
        for rid, r in self.runners.items():
            status = "online" if online else "offline"
            self.runners[rid] = r.model_copy(update={"status": status})


def release_sha(version: str) -> str:
    """The fake release's archive digest ("a" * 64 for the default 2.330.0)."""
    return "a" * 64 if version == "2.330.0" else hashlib.sha256(version.encode()).hexdigest()


class FakeGitHub:
    def __init__(self, world: World) -> None:
        self.world = world
        self.settings = GitHubSettings()
        self.stats = RequestStats()

    def list_runners(self, repository: str) -> list[GithubRunner]:
        self.stats.requests += 1
        return list(self.world.runners.values())

    def runners_named(self, repository: str, name: str, *, fresh: bool = False) -> GithubInventory:
        if self.world.busy_polls > 0:
            self.world.busy_polls -= 1
            self.world.set_busy(self.world.busy_polls > 0)
        return inventory_named(self.list_runners(repository), name)

    def delete_runner(self, repository: str, runner_id: int) -> bool:
        return self.world.runners.pop(runner_id, None) is not None

    def _token(self, kind: str, repository: str) -> RunnerToken:
        value = f"AAFAKE{kind.upper()}TOKEN{len(self.world.tokens_issued):04d}xyz"
        self.world.tokens_issued.append(kind)
        return RunnerToken(
            kind=kind,  # type: ignore[arg-type]
            repository=repository,
            token=SecretStr(value),
            expires_at=NOW + timedelta(hours=1),
        )

    def registration_token(self, repository: str) -> RunnerToken:
        return self._token("registration", repository)

    def remove_token(self, repository: str) -> RunnerToken:
        return self._token("remove", repository)

    def runner_downloads(self, repository: str) -> list[RunnerDownload]:
        return [
            RunnerDownload(
                os="linux",
                architecture="x64",
                download_url="https://example.invalid/r.tar.gz",
                filename=f"actions-runner-linux-x64-{self.world.release}.tar.gz",
                sha256_checksum=release_sha(self.world.release),
            )
        ]

    def download_runner(self, download: RunnerDownload, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / download.filename
        path.write_bytes(b"archive")
        return path

    def set_custom_labels(
        self, repository: str, runner_id: int, labels: Sequence[str]
    ) -> tuple[GithubLabel, ...]:
        runner = self.world.runners[runner_id]
        read_only = tuple(lb for lb in runner.labels if lb.type == "read-only")
        new = read_only + tuple(GithubLabel(name=x, type="custom") for x in labels)
        self.world.runners[runner_id] = runner.model_copy(update={"labels": new})
        return new

    def runner_group_id(self, organization: str, name: str) -> int | None:
        return self.world.runner_groups.get(name)


class FakeHelper:
    def __init__(self, world: World, lanes: LanesFile) -> None:
        self.world = world
        self.lanes = lanes

    def call(
        self,
        verb: Verb,
        lane: str,
        *,
        token: SecretStr | None = None,
        archive_sha256: str | None = None,
    ) -> VerbResult:
        return VerbResult.from_result(self.answer(verb, lane, token, archive_sha256))

    def answer(
        self, verb: Verb, lane: str, token: SecretStr | None, archive: str | None = None
    ) -> dict[str, JsonValue]:
        """What the real helper's verb would answer, reduced to what the agent reads."""
        w = self.world
        w.helper_calls.append(verb)
        if verb == w.fail_verb or (verb == "install-runner" and archive == w.fail_archive):
            raise PlanStepFailed(verb, "conflict: refused by the fake")
        (desired,) = self.lanes.lanes_named(lane)
        d = w.lane_dir(lane)
        dropin = w.unit_dir / dropin_dir_name(lane) / "50-lane.conf"
        if verb == "install-runner":
            assert not w.unit_active, "install-runner refuses a running unit"
            d.mkdir(exist_ok=True)
            (d / "run.sh").write_text("#!/bin/sh\n")
            (d / ".launchplane-archive").write_text(f"{archive}\n")
        elif verb == "register-runner":
            assert token is not None
            (d / ".runner").write_text(
                f'{{"agentId": {w.next_id}, "agentName": "{lane}", '
                f'"gitHubUrl": "https://github.com/{desired.scope}"}}'
            )
            group = w.runner_groups.get(desired.runner_group or "", 1)
            labels = tuple(
                GithubLabel(name=x, type="read-only" if x == "self-hosted" else "custom")
                for x in desired.labels
            )
            w.runners[w.next_id] = GithubRunner(
                id=w.next_id,
                name=lane,
                status="offline",
                busy=False,
                labels=labels,
                runner_group_id=w.misplace_group or group,
            )
            w.next_id += 1
        elif verb == "unregister-runner":
            (d / ".runner").unlink(missing_ok=True)
        elif verb == "install-or-update-unit":
            text = render_dropin(desired, self.lanes.github.proxy)
            changed = not dropin.exists() or dropin.read_text() != text
            dropin.parent.mkdir(parents=True, exist_ok=True)
            dropin.write_text(text)
            return {"changed": changed, "daemon_reload_needed": changed, "actions": []}
        elif verb in {"enable-now", "restart"}:
            w.unit_active = w.unit_enabled = True
            w.set_online(w.online_when_running)
        elif verb == "stop":
            w.unit_active = False
            w.set_online(False)
        elif verb == "disable":
            w.unit_enabled = False
        elif verb == "remove-unit":
            dropin.unlink(missing_ok=True)
        elif verb == "remove-runner-directory":
            for p in sorted(d.rglob("*"), reverse=True):
                p.unlink() if p.is_file() else p.rmdir()
            d.rmdir()
        return {"verb": verb}


def effective_config(text: str) -> dict[str, str]:
    """What systemd would load from the drop-in: the last value of each key (an empty
    assignment resets it, as `ExecStart=` does)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", "X-")):
            values[key.strip()] = value.strip()
    return values


class FakeUnits:
    def __init__(self, world: World) -> None:
        self.world = world

    def observe(self, lanes: Sequence[RunnerLaneMaintainerDesiredState]) -> dict[str, UnitState]:
        from agent.observe_unit import _read_nofollow
        from helper.contract.dropin import read_dropin_marks

        out = {}
        w = self.world
        for lane in lanes:
            path = w.unit_dir / dropin_dir_name(lane.lane_name) / "50-lane.conf"
            text = _read_nofollow(str(path))
            marks = read_dropin_marks(text) if text is not None else None
            present = text is not None
            running = w.unit_active and present
            loaded = effective_config(text) if present and text is not None else {}
            program = tuple(loaded.get("ExecStart", "").split())
            out[lane.lane_name] = UnitState(
                dropin_path=str(path),
                drop_in_paths=(str(path),) if present else (),
                user=loaded.get("User", ""),
                group=loaded.get("Group", ""),
                working_directory=loaded.get("WorkingDirectory", ""),
                exec_start=(program,) if program else (),
                main_process=ProcessFacts(
                    pid=4242,
                    uids=(w.main_pid_uid,) * 4,
                    gids=(4242,) * 4,
                    groups=(),
                    cmdline=("/bin/bash", *program),
                )
                if running
                else None,
                unit_name=lane.systemd_unit_name,
                load_state=LoadState.LOADED if present else LoadState.NOT_FOUND,
                active_state=ActiveState.ACTIVE
                if w.unit_active and present
                else ActiveState.INACTIVE,
                sub_state="running" if w.unit_active and present else "dead",
                unit_file_state=(
                    UnitFileState(("enabled" if w.unit_enabled else "disabled") if present else "")
                ),
                main_pid=4242 if w.unit_active and present else 0,
                main_pid_uid=w.main_pid_uid if w.unit_active and present else None,
                main_pid_in_unit_cgroup=w.unit_active and present,
                listener_log=ListenerLog(listening=True) if running else None,
                dropin_present=present,
                dropin_lane_mark=marks.lane if marks else None,
                dropin_hash=marks.hash if marks else None,
                dropin_hash_valid=marks.hash_valid if marks else False,
            )
        return out


def declared_in(root: Path, policy_fields: dict[str, Any] | None = None, **lane: Any) -> LanesFile:
    base = f.desired(registration_root=str(root), **lane)
    policy = HostPolicy(
        allowed_repositories=(f.REPO,),
        approved_hosts=(f.HOST,),
        allowed_registration_roots=(str(root),),
        allowed_service_users=(f.USER,),
        **(policy_fields or {}),
    )
    return LanesFile(policy=policy, lanes=(base,))


@dataclass
class FakeHost:
    """This machine as a test declares it; runner directories are real ones under tmp_path."""

    world: World

    def host_name(self) -> str:
        return f.HOST

    def user_uid(self, name: str) -> int | None:
        return UID if name == f.USER else None

    def runner_directory(self, desired: RunnerLaneMaintainerDesiredState) -> LocalRunnerDirectory:
        return observe_directory(desired)

    def docker(self) -> DockerVersions:
        return DockerVersions("27.1", "27.1", "0.12.1")

    def baseline(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        policy: HostPolicy,
        now: datetime,
        versions: DockerVersions,
    ) -> BaselineState:
        if self.world.baseline_missing:
            raise OSError("baseline probe failed")
        return BaselineState(
            checked_at=now, findings=self.world.baseline_findings, evidence={"docker_cli": "27.1"}
        )


@dataclass
class MemorySchedule:
    """The schedule port kept in memory; `saves` counts the passes that stored it."""

    schedule: Schedule = field(default_factory=Schedule)
    saves: int = 0

    def load(self) -> Schedule:
        return self.schedule

    def save(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.saves += 1


def agent_for(
    tmp_path: Path,
    clock: Callable[[], datetime] = lambda: NOW,
    policy_fields: dict[str, Any] | None = None,
    progress: Progress = SILENT,
    **lane: Any,
) -> tuple[Reconciler, World, LanesFile]:
    root = tmp_path / "runners"
    root.mkdir()
    world = World(root=root, unit_dir=tmp_path / "units")
    declared = declared_in(root, policy_fields, **lane)
    agent = fake_agent(world, declared, tmp_path / "audits", clock=clock, progress=progress)
    return agent, world, declared


def fake_agent(
    world: World,
    declared: LanesFile,
    audits: Path,
    *,
    helper_lanes: LanesFile | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
    progress: Progress = SILENT,
) -> Reconciler:
    """The production composition over one fake world (`helper_lanes`: what the helper reads,
    when it differs from what the agent declares)."""
    return assemble(
        declared,
        github=FakeGitHub(world),
        helper=FakeHelper(world, helper_lanes if helper_lanes is not None else declared),
        units=FakeUnits(world),
        host=FakeHost(world),
        store=FilesystemAuditStore(audits),
        evidence=None,
        cache_dir=audits.parent / "cache",
        schedule=MemorySchedule(),
        clock=clock,
        sleep=lambda _s: None,
        architecture="x64",
        online_timeout=0.0,
        progress=progress,
    )


class FakeTime:
    """One clock for the wall and the monotonic time; `sleep` only moves it."""

    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return (self.now - NOW).total_seconds()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def with_time(agent: Reconciler, time: FakeTime) -> Reconciler:
    """The agent whose applier sleeps and reads the monotonic time on `time`."""
    applier = replace(agent.applier, sleep=time.sleep, monotonic=time.monotonic)
    return replace(agent, applier=applier)
