"""Pure: a requested lane name -> the one lane root declared for this host, or a refusal."""

from __future__ import annotations

from helper.contract.dropin import unit_value_findings
from helper.contract.errors import LaneRefused
from helper.contract.identifiers import Finding, lane_name_findings
from helper.contract.lane_policy import lane_findings
from helper.contract.lanes import LanesFile, RunnerLaneMaintainerDesiredState


def resolve_lane(
    declared: LanesFile, name: str, host_name: str
) -> RunnerLaneMaintainerDesiredState:
    """Exactly one lane of that name, no finding against the allowlists, declared for this
    host, and renderable into a unit file. Everything else about the lane comes from here."""
    unsafe = lane_name_findings("lane", name)
    if unsafe:
        raise LaneRefused("unsafe lane name", unsafe)
    matches = declared.lanes_named(name)
    if not matches:
        raise LaneRefused(
            f"lane {name} is not declared in lanes.toml",
            [Finding("lane_not_declared", "lane_name", f"{name} is not declared")],
        )
    if len(matches) > 1:
        raise LaneRefused(
            f"lane {name} is declared {len(matches)} times",
            [Finding("duplicate_lane", "lane_name", f"{name} is declared more than once")],
        )
    lane = matches[0]
    findings = lane_findings(lane, declared.policy, declared.lanes, declared.counts)
    if lane.host_name.lower() != host_name.lower():
        findings.append(
            Finding(
                "host_mismatch",
                "host_name",
                f"lane is for {lane.host_name}, this host is {host_name}",
            )
        )
    findings += unit_value_findings(lane)
    if findings:
        findings = sorted(set(findings))
        raise LaneRefused(f"lane {name} is not acceptable: {findings[0].code}", findings)
    return lane
