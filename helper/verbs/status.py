"""`status`: read-only; what the helper sees of the lane (paths, drop-in, unit, findings)."""

from __future__ import annotations

from helper.access import READ
from helper.verbs.base import Result, VerbContext, VerbSpec


async def run(ctx: VerbContext) -> Result:
    facts = await ctx.facts()
    data = facts.as_dict()
    return {
        "unit": ctx.unit,
        "runner_directory": ctx.lane.runner_directory,
        "service_user": ctx.lane.service_user,
        "repository": ctx.lane.repository,
        "organization": ctx.lane.organization,
        "runner_group": ctx.lane.runner_group,
        "labels": list(ctx.lane.labels),
        "changed": False,
        "would_change": False,
        "actions": [],
        **data,
    }


SPEC = VerbSpec("status", READ, "read-only view of the lane's directory, drop-in and unit", run)
