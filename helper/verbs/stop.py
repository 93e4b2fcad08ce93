"""`stop`: stop a managed lane's unit and wait for the job's result."""

from __future__ import annotations

from helper.access import WRITE
from helper.contract.errors import SystemdFailed
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import refuse_foreign_runner, require_owned_dropin, require_safe


async def run(ctx: VerbContext) -> Result:
    facts = await ctx.facts()
    require_safe(facts)
    require_owned_dropin(facts)
    refuse_foreign_runner(facts)
    out = Outcome(ctx)
    if not facts.unit.running:
        out.skip("stop", f"unit is {facts.unit.active_state}")
    elif out.step("stop", main_pid_before=facts.unit.main_pid):
        result = await ctx.systemd.stop_unit(ctx.unit, ctx.config.job_timeout)
        out.actions[-1]["job_result"] = result
        if result != "done":
            raise SystemdFailed(f"stop job for {ctx.unit} ended with result {result!r}")
    after = await ctx.systemd.unit_properties(ctx.unit) if out.changed else facts.unit
    return out.result(unit_state=after.as_dict())


SPEC = VerbSpec("stop", WRITE, "StopUnit of a managed lane (awaits the job)", run)
