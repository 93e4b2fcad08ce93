"""Build the agent from its settings and lanes.toml: the only place that picks adapters."""

from __future__ import annotations

import fcntl
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import httpx
from pydantic import SecretStr

from agent.apply import Applier
from agent.audit_store import FilesystemAuditStore
from agent.contracts import RunnerLaneMaintainerAuditRecord
from agent.errors import PassLocked
from agent.evidence import TOKEN_FILE, EvidenceSpool
from agent.github.auth import credential_file, load_credential
from agent.github.client import GitHubClient
from agent.helper_socket import SocketHelper
from agent.host import LocalHost
from agent.logs import get_logger
from agent.metrics import PassFacts, pass_registry, write_metrics
from agent.observe import Observer
from agent.observe_journal import JournalctlReader
from agent.observe_unit import DbusUnitObserver
from agent.orphans import Orphan, find_orphans, removal_lanes
from agent.ports import (
    SILENT,
    AuditStore,
    Clock,
    EvidenceSink,
    GitHubPort,
    HelperPort,
    HostPort,
    Progress,
    SchedulePort,
    Sleep,
    UnitObserver,
)
from agent.progress import NotifyProgress, Tee, TerminalProgress
from agent.reconcile import Reconciler
from agent.records import Recorder
from agent.releases import ReleaseWatch
from agent.schedule import Cadence
from agent.schedule_file import ScheduleFile
from agent.settings import AgentSettings
from agent.verify import Verifier
from helper.contract.errors import LaunchplaneError
from helper.contract.identifiers import lane_name_findings
from helper.contract.lanes import LanesFile, load_lanes
from helper.contract.redact import REDACTOR

log = get_logger(__name__)

DEFAULT_CADENCE = Cadence()
ARCHITECTURES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def machine_architecture() -> str:
    """The runner archive's architecture for this machine (x64 when unknown)."""
    return ARCHITECTURES.get(platform.machine().lower(), "x64")


def assemble(
    declared: LanesFile,
    *,
    github: GitHubPort,
    helper: HelperPort,
    units: UnitObserver,
    host: HostPort,
    store: AuditStore,
    evidence: EvidenceSink | None,
    cache_dir: Path,
    schedule: SchedulePort,
    clock: Clock,
    sleep: Sleep,
    architecture: str,
    cadence: Cadence = DEFAULT_CADENCE,
    online_timeout: float = 120.0,
    poll_interval: float = 2.0,
    release_check: timedelta = timedelta(hours=1),
    progress: Progress = SILENT,
) -> Reconciler:
    """Compose the phases from the adapters given; nothing here picks a default adapter
    (`progress` defaults to showing none)."""
    releases = ReleaseWatch(github, cache_dir, clock, architecture, release_check)
    observer = Observer(declared.policy, github, units, host, clock, releases)
    return Reconciler(
        declared=declared,
        observer=observer,
        applier=Applier(github, helper, cache_dir, architecture, sleep=sleep, progress=progress),
        verifier=Verifier(
            declared,
            github,
            observer.observe_one,
            clock,
            sleep,
            online_timeout,
            poll_interval,
            progress=progress,
        ),
        recorder=Recorder(store, evidence, clock),
        schedule=schedule,
        cadence=cadence,
        clock=clock,
        progress=progress,
    )


def build_agent(
    paths: AgentSettings,
    declared: LanesFile | None = None,
    *,
    units: UnitObserver | None = None,
    progress: Progress = SILENT,
) -> Reconciler:
    """The production wiring: GitHub over httpx, the helper over its socket, systemd over D-Bus
    (`units` replaces the D-Bus observer, for a test bus or a benchmark); `progress` is where
    the pass says what it does (see `progress_for`)."""
    declared = declared if declared is not None else load_lanes(paths.lanes_file)
    paths = paths.configured(declared)
    github = GitHubClient(paths.github, load_credential(paths.credentials))
    evidence = EvidenceSpool(paths.state_dir / "spool") if paths.evidence_url else None
    return assemble(
        declared,
        github=github,
        helper=SocketHelper(paths.helper_socket),
        units=units
        if units is not None
        else DbusUnitObserver(JournalctlReader(), unit_dir=paths.unit_dir),
        host=LocalHost(),
        store=FilesystemAuditStore(paths.audit_dir),
        evidence=evidence,
        cache_dir=Path(paths.cache_dir),
        schedule=ScheduleFile(paths.state_dir / "schedule.json"),
        clock=utcnow,
        sleep=time.sleep,
        architecture=machine_architecture(),
        release_check=timedelta(seconds=paths.release_check_seconds),
        progress=progress,
    )


def progress_for(terminal: TextIO | None) -> Tee:
    """systemd's STATUS= (when there is a $NOTIFY_SOCKET) and, given one, a terminal."""
    sinks: tuple[Progress, ...] = (NotifyProgress(),)
    return Tee(sinks if terminal is None else (*sinks, TerminalProgress(terminal)))


@contextmanager
def pass_lock(
    runtime_dir: str,
    wait: float = 0.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    """One pass or mutating command at a time on a host (flock on a file in the runtime
    directory). Waits up to `wait` seconds for a running pass, then raises PassLocked."""
    Path(runtime_dir).mkdir(mode=0o750, parents=True, exist_ok=True)
    path = f"{runtime_dir}/pass.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    deadline = clock() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock() >= deadline:
                    raise PassLocked(
                        f"another pass holds {path} (waited {wait:.0f} s); try again when it "
                        "ends (journalctl -u launchplane-agent)"
                    ) from None
                sleep(min(0.2, max(0.0, deadline - clock())))
        yield
    finally:
        os.close(fd)


def deliver_evidence(paths: AgentSettings) -> None:
    """Send spooled records to the evidence URL (lanes.toml `[evidence] url`, or
    LAUNCHPLANE_EVIDENCE_URL) if configured; failures stay spooled. Pass settings that are
    `configured()` with lanes.toml."""
    url = paths.evidence_url
    if not url:
        return
    token_path = credential_file(Path(paths.credentials), TOKEN_FILE)
    try:
        token = SecretStr(token_path.read_text(encoding="utf-8").strip())
    except OSError:
        log.warning("evidence.no_token", path=str(token_path))
        return
    REDACTOR.register(token.get_secret_value())
    with httpx.Client(base_url=url, timeout=10.0) as client:
        EvidenceSpool(paths.state_dir / "spool").deliver(client, token)


def find_orphans_of(agent: Reconciler, paths: AgentSettings) -> list[Orphan]:
    """This host's orphans, with the agent's own GitHub client and host adapter."""
    observer = agent.observer
    return find_orphans(agent.declared, observer.host.host_name(), paths.unit_dir, observer.github)


def declared_for_removal(paths: AgentSettings, declared: LanesFile, lane: str) -> LanesFile:
    """lanes.toml, plus `lane` when it is an orphan this host's marks rebuild (so `remove`
    can take it apart); an undeclared lane with no such mark is refused."""
    if lane_name_findings("--lane", lane) or declared.lanes_named(lane):
        return declared
    found = find_orphans_of(build_agent(paths, declared), paths)
    return removal_lanes(declared, lane, found, paths.lanes_file)


def after_pass(
    paths: AgentSettings,
    agent: Reconciler,
    records: list[RunnerLaneMaintainerAuditRecord],
    seconds: float,
) -> None:
    """What follows every pass: audit retention, then the metrics file (when configured).
    Neither may fail the pass: a problem is logged and the next pass tries again."""
    now = agent.clock()
    try:
        agent.recorder.store.prune(now - timedelta(days=paths.audit_retention_days))
    except (OSError, LaunchplaneError) as exc:
        log.warning("audit.prune_failed", error=type(exc).__name__)
    if not paths.metrics_file or not Path(paths.metrics_file).parent.is_dir():
        return  # no node_exporter textfile directory on this host: nothing to feed
    facts = PassFacts(records, seconds, agent.observer.github.stats, now)
    try:
        write_metrics(
            paths.metrics_file, pass_registry(agent.declared, facts, agent.recorder.store)
        )
    except OSError as exc:
        log.warning("metrics.not_written", path=paths.metrics_file, error=type(exc).__name__)
