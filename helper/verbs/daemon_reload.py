"""`daemon-reload`: ask systemd to reload unit files (after a drop-in changed)."""

from __future__ import annotations

from helper.access import WRITE
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import require_safe


async def run(ctx: VerbContext) -> Result:
    facts = await ctx.facts()
    require_safe(facts)
    out = Outcome(ctx)
    if out.step("daemon_reload"):
        await ctx.systemd.reload()
    return out.result()


SPEC = VerbSpec("daemon-reload", WRITE, "systemd Manager.Reload", run)
