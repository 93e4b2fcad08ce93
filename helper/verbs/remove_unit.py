"""`remove-unit`: delete the lane's drop-in once the unit is stopped and disabled."""

from __future__ import annotations

from helper.access import WRITE
from helper.contract.errors import Conflict
from helper.unitfiles import remove_dropin
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import (
    refuse_foreign_dropin,
    refuse_foreign_runner,
    require_safe,
    require_stopped,
)


async def run(ctx: VerbContext) -> Result:
    facts = await ctx.facts()
    require_safe(facts)
    refuse_foreign_dropin(facts)
    refuse_foreign_runner(facts)
    dropin = facts.dropin
    out = Outcome(ctx)
    if dropin.state == "absent":
        out.skip("remove_dropin", "already gone", path=dropin.path)
    else:
        require_stopped(facts)
        if facts.unit.enabled:
            raise Conflict("unit_enabled", f"{ctx.unit} is enabled: disable it first")
        if out.step("remove_dropin", path=dropin.path, hash=dropin.hash_on_disk):
            remove_dropin(ctx.config.unit_dir, ctx.lane.lane_name)
    return out.result(
        dropin_path=dropin.path,
        hash_before=dropin.hash_on_disk,
        hash_after=None if out.changed else dropin.hash_on_disk,
        daemon_reload_needed=out.changed or out.would_change,
    )


SPEC = VerbSpec("remove-unit", WRITE, "delete the lane's drop-in (unit stopped and disabled)", run)
