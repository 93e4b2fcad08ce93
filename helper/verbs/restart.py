"""`restart`: restart a managed, registered lane's unit and wait for the job's result."""

from __future__ import annotations

from helper.access import WRITE
from helper.contract.errors import SystemdFailed
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import require_owned_dropin, require_registered, require_safe, require_user


async def run(ctx: VerbContext) -> Result:
    facts = await ctx.facts()
    require_safe(facts)
    require_user(facts)
    require_owned_dropin(facts)
    require_registered(facts)
    out = Outcome(ctx)
    if out.step("restart", main_pid_before=facts.unit.main_pid):
        result = await ctx.systemd.restart_unit(ctx.unit, ctx.config.job_timeout)
        out.actions[-1]["job_result"] = result
        if result != "done":
            raise SystemdFailed(f"restart job for {ctx.unit} ended with result {result!r}")
    after = await ctx.systemd.unit_properties(ctx.unit) if out.changed else facts.unit
    return out.result(unit_state=after.as_dict())


SPEC = VerbSpec("restart", WRITE, "RestartUnit of a managed lane (awaits the job)", run)
