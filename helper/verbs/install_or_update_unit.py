"""`install-or-update-unit`: write the lane's rendered drop-in; skipped when the hash matches."""

from __future__ import annotations

from helper.access import WRITE
from helper.contract.dropin import render_dropin
from helper.unitfiles import write_dropin
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import (
    refuse_foreign_dropin,
    refuse_foreign_runner,
    require_safe,
    require_user,
)


async def run(ctx: VerbContext) -> Result:
    facts = await ctx.facts()
    require_safe(facts)
    require_user(facts)
    refuse_foreign_dropin(facts)
    refuse_foreign_runner(facts)
    text = render_dropin(ctx.lane, ctx.proxy)
    dropin = facts.dropin
    out = Outcome(ctx)
    if dropin.current:
        out.skip("write_dropin", "hash unchanged", path=dropin.path, hash=dropin.expected_hash)
    elif out.step("write_dropin", path=dropin.path, hash=dropin.expected_hash):
        write_dropin(ctx.config.unit_dir, ctx.lane.lane_name, text)
    return out.result(
        dropin_path=dropin.path,
        hash_before=dropin.hash_on_disk,
        hash_after=dropin.expected_hash if out.changed else dropin.hash_on_disk,
        daemon_reload_needed=out.changed or out.would_change,
    )


SPEC = VerbSpec(
    "install-or-update-unit",
    WRITE,
    "write /etc/systemd/system/launchplane-runner@<lane>.service.d/50-lane.conf",
    run,
)
