"""`enable-now`: enable the lane's unit and start it, waiting for the start job's result."""

from __future__ import annotations

from helper.access import WRITE
from helper.contract.errors import SystemdFailed
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import (
    require_current_dropin,
    require_registered,
    require_runner_files,
    require_safe,
    require_user,
)


async def run(ctx: VerbContext) -> Result:
    facts = await ctx.facts()
    require_safe(facts)
    require_user(facts)
    require_current_dropin(facts)
    require_registered(facts)
    require_runner_files(facts, "run.sh")
    out = Outcome(ctx)
    if facts.unit.enabled:
        out.skip("enable", "already enabled", unit_file_state=facts.unit.unit_file_state)
    elif out.step("enable"):
        changes = await ctx.systemd.enable_unit_files([ctx.unit])
        out.actions[-1]["changes"] = [c.as_dict() for c in changes]
        await ctx.systemd.reload()
    if facts.unit.active_state == "active":
        out.skip("start", "already active", main_pid=facts.unit.main_pid)
    elif out.step("start"):
        result = await ctx.systemd.start_unit(ctx.unit, ctx.config.job_timeout)
        out.actions[-1]["job_result"] = result
        if result != "done":
            raise SystemdFailed(f"start job for {ctx.unit} ended with result {result!r}")
    after = await ctx.systemd.unit_properties(ctx.unit) if out.changed else facts.unit
    return out.result(unit_state=after.as_dict())


SPEC = VerbSpec("enable-now", WRITE, "EnableUnitFiles + Reload + StartUnit (awaits the job)", run)
