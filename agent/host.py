"""The host port's adapter: this machine's name, users, runner directories, Docker, baseline."""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import datetime

from agent.baseline import check_baseline, probe_docker
from agent.contracts import BaselineState, HostPolicy, LocalRunnerDirectory
from agent.observe_local import observe_directory, service_user_uid
from agent.osdeps import probe_os_dependencies
from agent.ports import DockerVersions
from helper.contract.lanes import RunnerLaneMaintainerDesiredState


class LocalHost:
    """The real machine: hostname, passwd, lstat/no-follow reads, the docker CLI."""

    def host_name(self) -> str:
        return socket.gethostname()

    def user_uid(self, name: str) -> int | None:
        return service_user_uid(name)

    def runner_directory(self, desired: RunnerLaneMaintainerDesiredState) -> LocalRunnerDirectory:
        return observe_directory(desired)

    def docker(self) -> DockerVersions:
        versions = probe_docker()
        return replace(versions, os_findings=tuple(probe_os_dependencies()))

    def baseline(
        self,
        desired: RunnerLaneMaintainerDesiredState,
        policy: HostPolicy,
        now: datetime,
        versions: DockerVersions,
    ) -> BaselineState:
        return check_baseline(desired, policy, now, versions)
