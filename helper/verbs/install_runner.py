"""`install-runner`: unpack a checksum-verified runner tarball into the lane directory, as
the service user, from the agent's cache path derived from the sha256 (never from input)."""

from __future__ import annotations

import hashlib
import os
import stat

from helper.access import WRITE
from helper.contract.errors import Conflict, LaneRefused, RequestInvalid
from helper.contract.safefs import secure_dir_findings, walk
from helper.steps import extract_spec
from helper.verbs.base import Outcome, Result, VerbContext, VerbSpec
from helper.verbs.rules import (
    refuse_foreign_dropin,
    refuse_foreign_runner,
    require_safe,
    require_stopped,
    require_user,
)
from helper.verbs.stepping import describe_spec, run_step

MAX_ARCHIVE = 2 * 1024**3
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def open_archive(cache_dir: str, sha256: str, owners: frozenset[int]) -> tuple[int, int]:
    """Open <cache>/<sha256>.tar.gz like every other helper path: walked from `/` without
    following a symlink in any component, every directory and the file owned by `owners`
    (root, the agent) and not writable by group or others, a regular file; then verify its
    digest. Returns (fd positioned at 0, size). The step re-hashes the bytes it extracts."""
    name = f"{sha256}.tar.gz"
    path = f"{cache_dir}/{name}"
    with walk(cache_dir, "runner_cache") as (dir_fd, infos):
        if dir_fd is None:
            raise Conflict("archive_missing", f"{cache_dir} is missing")
        findings = secure_dir_findings(infos, "runner_cache", owners, owners)
        if findings:
            raise LaneRefused(f"{cache_dir} is not a safe runner cache", findings)
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            raise Conflict("archive_missing", f"{path}: {exc.strerror}") from None
    try:
        size = _verify(fd, path, sha256, owners)
    except BaseException:
        os.close(fd)
        raise
    return fd, size


def _verify(fd: int, path: str, sha256: str, owners: frozenset[int]) -> int:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ARCHIVE:
        raise Conflict("archive_missing", f"{path} is not a regular file under 2 GiB")
    if st.st_uid not in owners or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Conflict(
            "archive_missing",
            f"{path} is not owned by root or the agent, or is writable by group or others",
        )
    digest = hashlib.sha256()
    while chunk := os.read(fd, 1 << 20):
        digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise Conflict("archive_checksum_mismatch", f"{path} does not hash to its name")
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_blocking(fd, True)
    return st.st_size


def cache_owners(ctx: VerbContext) -> frozenset[int]:
    """Who may own the cache and the archive: root, and the agent (its CacheDirectory=)."""
    agent = ctx.users.lookup(ctx.policy.agent_user)
    return frozenset({0} if agent is None else {0, agent[0]})


async def run(ctx: VerbContext) -> Result:
    sha256 = ctx.request.archive_sha256
    if sha256 is None:  # the protocol requires it for this verb
        raise RequestInvalid("missing field")
    facts = await ctx.facts()
    require_safe(facts)
    require_user(facts)
    refuse_foreign_dropin(facts)
    refuse_foreign_runner(facts)
    require_stopped(facts)
    if not facts.runner_dir.root_exists:
        raise Conflict("registration_root_missing", f"{ctx.lane.registration_root} is missing")
    fd, size = open_archive(ctx.config.runner_cache_dir, sha256, cache_owners(ctx))
    spec = extract_spec(ctx.lane, sha256, ctx.config)
    out = Outcome(ctx)
    archive = {"sha256": sha256, "size": size}
    if out.step("extract_runner", archive=archive, **describe_spec(spec)):
        out.actions[-1].update(await run_step(ctx, spec, fd))
    else:
        os.close(fd)
    return out.result()


SPEC = VerbSpec(
    "install-runner",
    WRITE,
    "extract <cache>/<sha256>.tar.gz into <root>/<lane> as the service user",
    run,
)
