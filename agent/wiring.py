"""Build an Agent from the host's files and environment (the only place that picks adapters)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr

from agent.audit_store import DEFAULT_AUDIT_DIR, FilesystemAuditStore
from agent.errors import PassLocked
from agent.evidence import TOKEN_FILE, EvidenceSpool
from agent.executor import Agent
from agent.github.auth import credential_file, load_credential
from agent.github.client import GitHubClient
from agent.github.settings import GitHubSettings
from agent.logs import get_logger
from agent.ports import DbusUnitObserver, SocketHelper
from helper.contract.lanes import DEFAULT_LANES_FILE, LanesFile, load_lanes
from helper.contract.protocol import DEFAULT_SOCKET
from helper.contract.redact import REDACTOR

log = get_logger("launchplane.agent")

DEFAULT_CACHE_DIR = "/var/cache/launchplane-agent"
DEFAULT_CREDENTIALS = "/etc/launchplane/credentials"
DEFAULT_RUNTIME_DIR = "/run/launchplane-agent"


@dataclass(frozen=True)
class Paths:
    """Where this agent reads and writes; every one overridable by LAUNCHPLANE_* variables."""

    lanes_file: str
    audit_dir: str
    cache_dir: str
    runtime_dir: str
    helper_socket: str
    credentials: str
    unit_dir: str

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Paths:
        e = os.environ if env is None else env
        return cls(
            lanes_file=e.get("LAUNCHPLANE_LANES_FILE", DEFAULT_LANES_FILE),
            audit_dir=e.get("LAUNCHPLANE_AUDIT_DIR", DEFAULT_AUDIT_DIR),
            cache_dir=e.get("LAUNCHPLANE_CACHE_DIR", DEFAULT_CACHE_DIR),
            runtime_dir=e.get(
                "RUNTIME_DIRECTORY", e.get("LAUNCHPLANE_RUNTIME_DIR", DEFAULT_RUNTIME_DIR)
            ),
            helper_socket=e.get("LAUNCHPLANE_HELPER_SOCKET", DEFAULT_SOCKET),
            credentials=e.get(
                "CREDENTIALS_DIRECTORY", e.get("LAUNCHPLANE_CREDENTIALS", DEFAULT_CREDENTIALS)
            ),
            unit_dir=e.get("LAUNCHPLANE_UNIT_DIR", "/etc/systemd/system"),
        )


def build_agent(paths: Paths, declared: LanesFile | None = None) -> Agent:
    """The production wiring: GitHub over httpx, the helper over its socket, systemd over D-Bus."""
    declared = declared if declared is not None else load_lanes(paths.lanes_file)
    settings = GitHubSettings.from_environment()
    if settings.cache_dir is None:
        settings = settings.model_copy(update={"cache_dir": Path(paths.cache_dir) / "http"})
    github = GitHubClient(settings, load_credential(paths.credentials))
    evidence = None
    if os.environ.get("LAUNCHPLANE_EVIDENCE_URL"):
        evidence = EvidenceSpool(Path(paths.audit_dir).parent / "spool")
    return Agent(
        evidence=evidence,
        declared=declared,
        github=github,
        helper=SocketHelper(paths.helper_socket),
        units=DbusUnitObserver(unit_dir=paths.unit_dir),
        store=FilesystemAuditStore(paths.audit_dir),
        cache_dir=Path(paths.cache_dir),
    )


@contextmanager
def pass_lock(runtime_dir: str) -> Iterator[None]:
    """One reconcile pass at a time on a host (flock on a file in the runtime directory)."""
    Path(runtime_dir).mkdir(mode=0o750, parents=True, exist_ok=True)
    fd = os.open(
        f"{runtime_dir}/pass.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
    )
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PassLocked("another reconcile pass is running") from None
        yield
    finally:
        os.close(fd)


def deliver_evidence(paths: Paths) -> None:
    """Send spooled records to LAUNCHPLANE_EVIDENCE_URL, if configured; failures stay spooled."""
    url = os.environ.get("LAUNCHPLANE_EVIDENCE_URL")
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
        EvidenceSpool(Path(paths.audit_dir).parent / "spool").deliver(client, token)
