"""A declared lane against the host's allowlists and the rest of its file: the findings that
block it (`lane_findings`: these and its syntax findings, sorted)."""

from __future__ import annotations

from collections import Counter

from helper.contract.identifiers import MANAGED_LABEL, Finding, is_within, unit_name_for
from helper.contract.lanes import (
    HostPolicy,
    LaneCounts,
    RunnerLaneMaintainerDesiredState,
    syntax_findings,
)
from helper.contract.scope import scope_findings


def policy_findings(
    lane: RunnerLaneMaintainerDesiredState,
    policy: HostPolicy,
    all_lanes: tuple[RunnerLaneMaintainerDesiredState, ...],
    counts: LaneCounts | None = None,
) -> list[Finding]:
    """Findings against the allowlists and the rest of the file; each one blocks the lane.
    Pass `LanesFile.counts` when checking many lanes of one file: it is counted once."""
    out = scope_findings(lane, policy)
    if lane.host_name.lower() not in {h.lower() for h in policy.approved_hosts}:
        out.append(Finding("host_not_approved", "host_name", f"{lane.host_name} not approved"))
    if not any(
        lane.registration_root == root or is_within(lane.registration_root, root)
        for root in policy.allowed_registration_roots
    ):
        out.append(
            Finding(
                "registration_root_not_allowed",
                "registration_root",
                f"{lane.registration_root} is outside the allowed roots",
            )
        )
    if lane.service_user not in policy.allowed_service_users:
        out.append(
            Finding(
                "service_user_not_allowed", "service_user", f"{lane.service_user} not allowlisted"
            )
        )
    have = {label.lower() for label in lane.labels}
    if MANAGED_LABEL not in have:
        out.append(Finding("missing_managed_label", "labels", f"{MANAGED_LABEL!r} is required"))
    for label in policy.required_labels:
        if label.lower() not in have and label.lower() != MANAGED_LABEL:
            out.append(Finding("missing_required_label", "labels", f"{label!r} is required"))
    for kind, label in (("host", lane.host_name), ("product", lane.product)):
        if label.lower() not in have:
            out.append(Finding("missing_required_label", "labels", f"{kind} label {label!r}"))
    if lane.systemd_unit_name != unit_name_for(lane.lane_name):
        out.append(
            Finding(
                "unit_name_mismatch",
                "systemd_unit_name",
                f"must be {unit_name_for(lane.lane_name)!r}",
            )
        )
    if counts is None:
        counts = LaneCounts(
            Counter(other.lane_name for other in all_lanes),
            Counter(other.runner_directory for other in all_lanes),
        )
    if counts.names[lane.lane_name] > 1:
        out.append(Finding("duplicate_lane", "lane_name", f"{lane.lane_name} is declared twice"))
    elif counts.directories[lane.runner_directory] > 1:
        out.append(
            Finding("duplicate_lane", "registration_root", "runner directory shared with a lane")
        )
    return out


def lane_findings(
    lane: RunnerLaneMaintainerDesiredState,
    policy: HostPolicy,
    all_lanes: tuple[RunnerLaneMaintainerDesiredState, ...],
    counts: LaneCounts | None = None,
) -> list[Finding]:
    """Every reason this lane may not be acted on, sorted; empty means it may."""
    return sorted(syntax_findings(lane) + policy_findings(lane, policy, all_lanes, counts))
