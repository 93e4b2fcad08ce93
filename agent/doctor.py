"""`launchplane-agent doctor`: check a host end to end, each finding with a code and a fix.
The checks (agent.doctor_checks) are pure over what `DoctorProbes` reads; the real probes
are in agent.doctor_probes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.contracts import BaselineFinding, LocalRunnerDirectory
from agent.doctor_checks import (
    AGENT_SERVICE,
    UNITS,
    check_audits,
    check_clock,
    check_files,
    check_github,
    check_lanes,
    check_orphans,
    check_os,
    check_units,
    check_urls,
)
from agent.doctor_model import Check
from agent.orphans import Orphan
from agent.ports import GitHubPort
from agent.settings import AgentSettings
from helper.contract.errors import ConfigError
from helper.contract.lanes import LanesFile, RunnerLaneMaintainerDesiredState
from helper.contract.systemd import UnitProps

__all__ = ["Check", "DoctorProbes", "render_checks", "run_doctor"]


@dataclass(frozen=True)
class DoctorProbes:
    """What doctor reads; the real ones are in agent.doctor_probes, tests give their own."""

    units: Callable[[Sequence[str]], Mapping[str, UnitProps]]
    credential: Callable[[], object]  # load_credential: raises with the problem and fix
    github: Callable[[], GitHubPort]
    github_date: Callable[[], datetime]  # GitHub's Date header; raises LaunchplaneError/OSError
    runner_directory: Callable[[RunnerLaneMaintainerDesiredState], LocalRunnerDirectory]
    os_findings: Callable[[], Sequence[BaselineFinding]]
    orphans: Callable[[LanesFile], Sequence[Orphan]]
    now: Callable[[], datetime]
    agent_uid: int | None = None  # the audit store's owner; None: not checked


def run_doctor(
    declared: LanesFile | ConfigError, paths: AgentSettings, probes: DoctorProbes
) -> list[Check]:
    """Every check, in the order an operator would fix them. With lanes.toml invalid (or a
    setting in it), the checks that need it are replaced by that finding."""
    out = list(check_units(probes.units((*UNITS, AGENT_SERVICE))))
    out += check_files(paths, probes.credential)
    if isinstance(declared, ConfigError):
        out.append(
            Check(
                "lanes_file",
                "lanes_invalid",
                str(declared).replace("\n", "; "),
                f"fix each field named in {paths.lanes_file}",
            )
        )
    else:
        out += check_lanes(declared)
        if not any(c.code == "credential_invalid" for c in out):
            out += check_github(declared, probes.github())
        out += check_urls(declared, paths, probes.runner_directory)
    out += check_os(probes.os_findings())
    out += check_clock(probes.github_date, probes.now())
    if not isinstance(declared, ConfigError):
        out += check_orphans(probes.orphans(declared))
    out += check_audits(paths.audit_dir, probes.agent_uid)
    return out


def render_checks(checks: Sequence[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{'ok  ' if c.passed else 'FAIL'}  {c.check:<15} {c.code:<28} {c.detail}")
        if c.fix:
            lines.append(f"{'':<6}{'':<15} fix: {c.fix}")
    failed = sum(not c.passed for c in checks)
    lines.append("all checks passed" if not failed else f"{failed} check(s) failed")
    return "\n".join(lines)
