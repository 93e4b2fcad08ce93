"""`register-runner`: config.sh with a fixed argv as the service user; token via stdin/env."""

from __future__ import annotations

from helper.access import WRITE
from helper.contract.errors import Conflict, RequestInvalid, StepFailed
from helper.steps import register_spec
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import (
    refuse_foreign_dropin,
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
    require_runner_files(facts, "config.sh")
    runner_file = facts.runner_dir.runner_file
    if runner_file.state != "absent":
        detail = runner_file.problem or "it names this lane"
        raise Conflict("already_registered", f"{facts.runner_dir.path}/.runner exists ({detail})")
    require_stopped(facts)
    spec = register_spec(ctx.lane, ctx.policy, ctx.config)
    out = Outcome(ctx)
    if out.step("register_runner", **describe_spec(spec)):
        out.actions[-1].update(await run_step(ctx, spec, token_pipe(token.get_secret_value())))
        after = (await ctx.facts()).runner_dir.runner_file
        if after.state != "ours":
            raise StepFailed(f"config.sh succeeded but .runner is {after.state}: {after.problem}")
    return out.result()


SPEC = VerbSpec(
    "register-runner",
    WRITE,
    "config.sh --unattended --url <web>/<repo> --name <lane> --labels ... as the service user",
    run,
)
