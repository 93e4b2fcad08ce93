"""`disable`: disable a managed lane's unit (DisableUnitFiles + Reload)."""

from __future__ import annotations

from helper.access import WRITE
from helper.contract.errors import NotOwned
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import refuse_foreign_dropin, require_safe


async def run(ctx: VerbContext) -> Result:
    facts = await ctx.facts()
    require_safe(facts)
    refuse_foreign_dropin(facts)
    out = Outcome(ctx)
    if not facts.unit.enabled:
        out.skip("disable", f"unit file state is {facts.unit.unit_file_state or 'unknown'}")
    elif facts.dropin.state != "owned":
        raise NotOwned(f"{ctx.unit} is enabled but has no launchplane drop-in")
    elif out.step("disable"):
        changes = await ctx.systemd.disable_unit_files([ctx.unit])
        out.actions[-1]["changes"] = [c.as_dict() for c in changes]
        await ctx.systemd.reload()
    return out.result()


SPEC = VerbSpec("disable", WRITE, "DisableUnitFiles + Reload of a managed lane", run)
