"""`unregister-runner`: forget the registration locally (no token, no runner code).

The agent deletes the registration at GitHub first (`DELETE /repos/{owner}/{repo}/actions/
runners/{id}`), so no remove token ever reaches the host; this verb then deletes `.runner`,
`.credentials`, `.credentials_rsaparams`, `.env` and `.path` as the service user, without
network and without running anything from the runner directory."""

from __future__ import annotations

import os

from helper.access import WRITE
from helper.contract.errors import StepFailed
from helper.steps import unregister_spec
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import (
    refuse_foreign_dropin,
    refuse_foreign_runner,
    require_safe,
    require_stopped,
    require_user,
)
from helper.verbs.stepping import describe_spec, run_step


async def run(ctx: VerbContext) -> Result:
    facts = await ctx.facts()
    require_safe(facts)
    require_user(facts)
    refuse_foreign_dropin(facts)
    refuse_foreign_runner(facts)
    out = Outcome(ctx)
    if facts.runner_dir.runner_file.state == "absent":
        out.skip("unregister_runner", "no .runner: nothing registered here")
        return out.result()
    require_stopped(facts)
    spec = unregister_spec(ctx.lane, ctx.config)
    if out.step("unregister_runner", **describe_spec(spec)):
        stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        out.actions[-1].update(await run_step(ctx, spec, stdin))
        after = (await ctx.facts()).runner_dir.runner_file
        if after.state != "absent":
            raise StepFailed(f"the registration files were removed but .runner is {after.state}")
    return out.result()


SPEC = VerbSpec(
    "unregister-runner",
    WRITE,
    "delete the local registration files as the service user (GitHub's side: REST DELETE)",
    run,
)
