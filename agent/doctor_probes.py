"""What `doctor` reads from the host: units over D-Bus, GitHub's Date header, the rest through
the agent's own adapters."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from dbus_fast.errors import DBusError

from agent.doctor import DoctorProbes
from agent.github.auth import load_credential
from agent.github.client import GitHubClient
from agent.host import LocalHost
from agent.observe_local import service_user_uid
from agent.orphans import Orphan, find_orphans
from agent.osdeps import probe_os_dependencies
from agent.settings import AgentSettings
from helper.contract.errors import LaunchplaneError, SystemdFailed
from helper.contract.lanes import LanesFile
from helper.contract.systemd import DbusSystemd, UnitProps


def read_units(units: Sequence[str], bus_address: str | None = None) -> Mapping[str, UnitProps]:
    """Each unit's state as systemd reports it; on no bus, each reads `unknown`."""

    async def read() -> dict[str, UnitProps]:
        async with DbusSystemd.connect(bus_address) as systemd:
            return {u: await systemd.unit_properties(u) for u in units}

    try:
        return asyncio.run(read())
    except (OSError, DBusError, SystemdFailed) as exc:
        unknown = f"unknown ({type(exc).__name__}: is the system bus reachable?)"
        return {u: UnitProps(u, load_state=unknown, active_state="unknown") for u in units}


def github_date(api_url: str, proxy: str | None) -> datetime:
    """GitHub's clock: the Date header of an unauthenticated request to the API's root."""
    with httpx.Client(proxy=proxy, timeout=10.0) as client:
        response = client.get(api_url + "/")
    raw = response.headers.get("Date")
    if raw is None:
        raise ValueError(f"{api_url}/ answered {response.status_code} without a Date header")
    return parsedate_to_datetime(raw).astimezone(UTC)


def host_probes(paths: AgentSettings) -> DoctorProbes:
    host = LocalHost()
    return DoctorProbes(
        units=read_units,
        credential=lambda: load_credential(paths.credentials),
        github=lambda: GitHubClient(paths.github, load_credential(paths.credentials)),
        github_date=lambda: github_date(paths.github.api_url, paths.github.proxy),
        runner_directory=host.runner_directory,
        os_findings=probe_os_dependencies,
        orphans=lambda declared: _orphans(declared, paths, host),
        now=lambda: datetime.now(UTC),
        agent_uid=service_user_uid("launchplane-agent"),
    )


def _orphans(declared: LanesFile, paths: AgentSettings, host: LocalHost) -> list[Orphan]:
    try:
        github: GitHubClient | None = GitHubClient(paths.github, load_credential(paths.credentials))
    except LaunchplaneError:  # no usable credential: the orphans on this host only
        github = None
    return find_orphans(declared, host.host_name(), paths.unit_dir, github)
