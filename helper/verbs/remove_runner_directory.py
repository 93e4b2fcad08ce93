"""`remove-runner-directory`: delete `<registration_root>/<lane>` once the lane is wound down.

The helper checks what it can see (unit stopped and disabled, no foreign drop-in, `.runner`
absent or ours, no symlink on the path, the directory owned by the service user), then has
systemd run `helper/runner_remove.py` as the service user in a transient unit. The step does
the removal because the helper cannot: it has no `CAP_DAC_OVERRIDE` (the directory and its
contents belong to the service user) and, under `ProtectProc=invisible`, it cannot see the
service user's processes to check that none still uses the directory. The step re-checks
everything from its own view and walks directory descriptors without following a link.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from helper.access import WRITE
from helper.config import HelperConfig
from helper.contract.errors import Conflict, StepFailed
from helper.contract.lanes import RunnerLaneMaintainerDesiredState
from helper.contract.safefs import walk
from helper.contract.transient import TransientSpec
from helper.steps import runner_user_spec
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import (
    refuse_foreign_dropin,
    refuse_foreign_runner,
    require_safe,
    require_stopped,
    require_user,
)
from helper.verbs.stepping import describe_spec

REMOVE_PROGRAM = str(Path(__file__).resolve().parent.parent / "runner_remove.py")
MAX_LISTED = 50
EXIT_MEANINGS = {
    64: "usage (the helper passed values the step refused)",
    66: "unsafe: a symlink, not a directory, another owner, or a mount inside",
    74: "removal failed part way (files of another user?)",
}
IN_USE = 67


def remove_spec(
    lane: RunnerLaneMaintainerDesiredState, service_uid: int, config: HelperConfig
) -> TransientSpec:
    """The step as the service user: only the registration root writable, no network."""
    argv = (
        config.python,
        "-I",
        "-S",
        REMOVE_PROGRAM,
        lane.registration_root,
        lane.lane_name,
        str(service_uid),
    )
    return runner_user_spec(
        "remove",
        lane,
        config,
        description="remove the runner directory",
        argv=argv,
        directory=lane.registration_root,
        private_network=True,
    )


def top_level_entries(path: str) -> tuple[list[str] | None, int | None]:
    """What a dry-run reports: the directory's first entries (sorted) and how many there are.
    (None, None) when root without capabilities may not list it."""
    with walk(path, "runner_directory") as (fd, _):
        if fd is None:
            return [], 0
        try:
            names = sorted(os.listdir(fd))
        except PermissionError:
            return None, None
    return names[:MAX_LISTED], len(names)


async def _run(ctx: VerbContext, spec: TransientSpec) -> dict[str, Any]:
    stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        outcome = await ctx.systemd.run_transient(spec, stdin)
    finally:
        with contextlib.suppress(OSError):
            os.close(stdin)
    detail: dict[str, Any] = {
        "transient_unit": outcome.unit,
        "job_result": outcome.job_result,
        "exit_status": outcome.exit_status,
        "unit_result": outcome.result,
    }
    if outcome.ok:
        return detail
    journal = f"journalctl -u {outcome.unit}"
    if outcome.exit_status == IN_USE:
        raise Conflict(
            "directory_in_use",
            f"{ctx.lane.runner_directory} is in use by a process, or .runner names another "
            f"runner; nothing was removed ({journal})",
        )
    meaning = EXIT_MEANINGS.get(outcome.exit_status or -1, "see the journal")
    raise StepFailed(
        f"{outcome.unit} ended {outcome.job_result} "
        f"(exit status {outcome.exit_status}: {meaning}); {journal}"
    )


async def run(ctx: VerbContext) -> Result:
    facts = await ctx.facts()  # a symlink or non-directory on the path refuses here
    require_safe(facts)
    path = ctx.lane.runner_directory
    out = Outcome(ctx)
    if not facts.runner_dir.exists:
        out.skip("remove_runner_directory", "already gone", path=path)
        return out.result(path=path, removed=False)
    require_user(facts)
    refuse_foreign_dropin(facts)
    refuse_foreign_runner(facts)
    require_stopped(facts)
    if facts.unit.main_pid:
        raise Conflict("unit_active", f"{ctx.unit} still has main PID {facts.unit.main_pid}")
    if facts.unit.enabled:
        raise Conflict("unit_enabled", f"{ctx.unit} is enabled: disable it first")
    service_uid = facts.service_ids[0] if facts.service_ids else -1  # set: require_user
    spec = remove_spec(ctx.lane, service_uid, ctx.config)
    entries, count = top_level_entries(path)
    detail = {"path": path, "entries": entries, "entry_count": count, **describe_spec(spec)}
    if out.step("remove_runner_directory", **detail):
        out.actions[-1].update(await _run(ctx, spec))
        if (await ctx.facts()).runner_dir.exists:
            raise StepFailed(f"the step succeeded but {path} still exists")
    return out.result(path=path, removed=out.changed)


SPEC = VerbSpec(
    "remove-runner-directory",
    WRITE,
    "delete <root>/<lane> as the service user (stopped, disabled, unregistered or ours)",
    run,
)
