"""`register-runner`: a pristine config.sh with a fixed argv as the service user; the token
via stdin/env, only while no other process of the service user can exist.

Custody (issue 13): the runner directory is writable by the lane's jobs, so nothing in it
is run: the step unpacks the cached archive recorded by `install-runner` (verified here and
again by the step) into its private /tmp and runs that. Same-uid processes could read the
step's environment and stdin through /proc, so registration is refused while any lane unit
of the same service user is not inactive."""

from __future__ import annotations

import os
import re

from helper.access import WRITE
from helper.contract.errors import Conflict, RequestInvalid, StepFailed
from helper.contract.identifiers import unit_name_for
from helper.contract.safefs import read_small, walk
from helper.steps import register_spec
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.install_runner import cache_owners, open_archive
from helper.verbs.rules import (
    refuse_foreign_dropin,
    require_runner_files,
    require_safe,
    require_stopped,
    require_user,
)
from helper.verbs.stepping import describe_spec, run_step, token_pipe

ARCHIVE_RECORD = ".launchplane-archive"
SHA256_LINE = re.compile(rb"[0-9a-f]{64}\n?")
QUIET_STATES = frozenset({"inactive", "failed", ""})


def installed_archive(ctx: VerbContext) -> str:
    """The digest `install-runner` recorded, whose cached archive must still verify. A job
    may rewrite the record, but only to another archive of the agent's verified cache."""
    with walk(ctx.lane.runner_directory, "runner_directory") as (dir_fd, _):
        read = read_small(dir_fd, ARCHIVE_RECORD) if dir_fd is not None else None
    if read is None or read.state != "regular" or not SHA256_LINE.fullmatch(read.data):
        raise Conflict("runner_not_installed", f"no valid {ARCHIVE_RECORD}: run install-runner")
    sha256 = read.data.strip().decode()
    fd, _ = open_archive(ctx.config.runner_cache_dir, sha256, cache_owners(ctx))
    os.close(fd)
    return sha256


async def require_user_quiet(ctx: VerbContext) -> None:
    """No lane unit of this service user may be running (or about to restart)."""
    for other in ctx.lanes:
        if other.service_user != ctx.lane.service_user:
            continue
        unit = unit_name_for(other.lane_name)
        state = (await ctx.systemd.unit_properties(unit)).active_state
        if state not in QUIET_STATES:
            raise Conflict(
                "service_user_busy",
                f"{unit} ({other.service_user}) is {state}: its processes could read the "
                "registration token through /proc; stop it first",
            )


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
    await require_user_quiet(ctx)
    sha256 = installed_archive(ctx)
    spec = register_spec(ctx.lane, ctx.policy, ctx.config, sha256, proxy=ctx.proxy)
    out = Outcome(ctx)
    if out.step("register_runner", archive_sha256=sha256, **describe_spec(spec)):
        out.actions[-1].update(await run_step(ctx, spec, token_pipe(token.get_secret_value())))
        after = (await ctx.facts()).runner_dir.runner_file
        if after.state != "ours":
            raise StepFailed(f"config.sh succeeded but .runner is {after.state}: {after.problem}")
    return out.result()


SPEC = VerbSpec(
    "register-runner",
    WRITE,
    "a pristine config.sh --unattended --url <web>/<scope> --name <lane> ... as the service user",
    run,
)
