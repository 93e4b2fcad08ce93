"""Running a runner-user step as a transient unit and turning its outcome into a result."""

from __future__ import annotations

import os
from typing import Any

from helper.contract.errors import StepFailed
from helper.contract.transient import TransientSpec
from helper.verbs.base import VerbContext

EXIT_MEANINGS = {
    64: "usage (the helper passed values the step refused)",
    65: "archive checksum mismatch",
    66: "unsafe archive or config.sh",
    67: "wrong state (already registered, or runner files missing)",
}


def token_pipe(token: str) -> int:
    """A pipe whose read end yields the token and then EOF; the write end is closed here.
    The token (at most 1 KiB) fits the pipe buffer, so nothing waits for a reader."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        os.write(write_fd, token.encode("ascii") + b"\n")
    finally:
        os.close(write_fd)
    return read_fd


def describe_spec(spec: TransientSpec) -> dict[str, Any]:
    """What the step will run: argv, user, directories. Never anything secret."""
    return {
        "transient_unit": spec.name,
        "argv": list(spec.argv),
        "user": spec.user,
        "working_directory": spec.working_directory,
        "read_write_paths": list(spec.read_write_paths),
        "private_network": spec.private_network,
    }


async def run_step(ctx: VerbContext, spec: TransientSpec, stdin_fd: int) -> dict[str, Any]:
    """Start the step, wait for it, raise StepFailed unless it exited 0. Closes stdin_fd."""
    try:
        outcome = await ctx.systemd.run_transient(spec, stdin_fd)
    finally:
        os.close(stdin_fd)
    detail = {
        "transient_unit": outcome.unit,
        "job_result": outcome.job_result,
        "exit_status": outcome.exit_status,
        "unit_result": outcome.result,
    }
    if not outcome.ok:
        status = outcome.exit_status
        meaning = EXIT_MEANINGS.get(status or -1, "see the journal")
        raise StepFailed(
            f"{outcome.unit} ended {outcome.job_result} (exit status {status}: {meaning}); "
            f"journalctl -u {outcome.unit}"
        )
    return detail
