"""`unregister-runner`: `config.sh remove` as the service user; token via stdin/env."""

from __future__ import annotations

from helper.access import WRITE
from helper.contract.errors import RequestInvalid, StepFailed
from helper.steps import unregister_spec
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import (
    refuse_foreign_dropin,
    refuse_foreign_runner,
    require_runner_files,
    require_safe,
    require_stopped,
    require_user,
)
from helper.verbs.stepping import describe_spec, run_step, token_pipe


async def run(ctx: VerbContext) -> Result:
    token = ctx.request.token
    if token is None:  # the protocol requires it for this verb
        raise RequestInvalid("missing field")
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
    require_runner_files(facts, "config.sh")
    spec = unregister_spec(ctx.lane, ctx.config)
    if out.step("unregister_runner", **describe_spec(spec)):
        out.actions[-1].update(await run_step(ctx, spec, token_pipe(token.get_secret_value())))
        after = (await ctx.facts()).runner_dir.runner_file
        if after.state != "absent":
            raise StepFailed(f"config.sh remove succeeded but .runner is still {after.state}")
    return out.result()


SPEC = VerbSpec("unregister-runner", WRITE, "config.sh remove as the service user", run)
