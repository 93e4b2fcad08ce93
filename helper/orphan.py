"""An undeclared lane that the helper itself made (its marked drop-in, or its runner directory
under an allowed root owned by an allowed service user) may still be taken apart: for the
removal verbs only, lanes.toml is read as if it still declared it (apply = false)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable

from helper.contract.dropin import DROPIN_NAME, dropin_dir_name
from helper.contract.errors import LaneRefused
from helper.contract.identifiers import lane_name_findings
from helper.contract.lanes import LanesFile, RunnerLaneMaintainerDesiredState
from helper.contract.orphans import (
    including,
    lane_from_dropin,
    orphan_lane,
    scope_from_runner_url,
)
from helper.contract.protocol import Verb
from helper.contract.safefs import read_small, walk

REMOVAL_VERBS: frozenset[Verb] = frozenset(
    {
        "status",
        "stop",
        "disable",
        "remove-unit",
        "daemon-reload",
        "unregister-runner",
        "remove-runner-directory",
    }
)


def _from_dropin(
    declared: LanesFile, lane: str, unit_dir: str, host_name: str
) -> RunnerLaneMaintainerDesiredState | None:
    try:
        with walk(f"{unit_dir}/{dropin_dir_name(lane)}", "dropin_dir") as (fd, _):
            if fd is None:
                return None
            read = read_small(fd, DROPIN_NAME)
    except (LaneRefused, OSError):
        return None
    if read.state != "regular":
        return None
    try:
        text = read.data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return lane_from_dropin(text, host_name, declared.policy)


def _scope(fd: int, declared: LanesFile) -> str | None:
    read = read_small(fd, ".runner")
    if read.state == "absent":
        # No registration left in it: the scope names nothing the removal verbs touch (it
        # only renders a drop-in's Description and checks a `.runner` that is not there).
        allowed = (*declared.policy.allowed_repositories, *declared.policy.allowed_organizations)
        return allowed[0] if allowed else None
    if read.state != "regular":
        return None
    try:
        url = json.loads(read.data.decode("utf-8-sig")).get("gitHubUrl")
    except (ValueError, UnicodeDecodeError, AttributeError, RecursionError):
        return None
    return (
        scope_from_runner_url(url, declared.policy.github_web_url) if isinstance(url, str) else None
    )


Lookup = Callable[[str], "tuple[int, int] | None"]  # a user name -> (uid, gid), or None


def _from_directory(
    declared: LanesFile, lane: str, host_name: str, lookup: Lookup
) -> RunnerLaneMaintainerDesiredState | None:
    policy = declared.policy
    for root in policy.allowed_registration_roots:
        try:
            with walk(f"{root}/{lane}", "runner_directory") as (fd, _):
                if fd is None:
                    continue
                st = os.fstat(fd)
                repository = _scope(fd, declared)
        except (LaneRefused, OSError):
            continue
        owners = [u for u in policy.allowed_service_users if (lookup(u) or (None,))[0] == st.st_uid]
        if not stat.S_ISDIR(st.st_mode) or len(owners) != 1:
            continue
        user = owners[0]
        if repository is not None:
            return orphan_lane(lane, repository, root, user, host_name=host_name, policy=policy)
    return None


def with_orphan(
    declared: LanesFile, verb: Verb, lane: str, *, unit_dir: str, host_name: str, lookup: Lookup
) -> LanesFile:
    """lanes.toml, plus the undeclared lane `lane` when `verb` takes a lane apart and the
    helper's own marks rebuild it; otherwise lanes.toml as it is (resolve_lane refuses)."""
    if verb not in REMOVAL_VERBS or declared.lanes_named(lane) or lane_name_findings("", lane):
        return declared
    orphan = _from_dropin(declared, lane, unit_dir, host_name) or _from_directory(
        declared, lane, host_name, lookup
    )
    return declared if orphan is None else including(declared, orphan)
