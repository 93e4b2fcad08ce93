"""What the helper observes about one lane before acting: runner directory, drop-in, unit."""

from __future__ import annotations

import json
import os
import pwd
from dataclasses import dataclass
from typing import Any, Protocol

from helper.contract.dropin import (
    DROPIN_NAME,
    DropinMarks,
    dropin_dir_name,
    read_dropin_marks,
    render_dropin,
)
from helper.contract.identifiers import Finding, unit_name_for
from helper.contract.lanes import HostPolicy, RunnerLaneMaintainerDesiredState
from helper.contract.safefs import (
    entry_kind,
    read_small,
    secure_dir_findings,
    walk,
)
from helper.contract.systemd import SystemdPort, UnitProps


class UserDb(Protocol):
    def lookup(self, name: str) -> tuple[int, int] | None:
        """(uid, gid) of a user name, or None when there is no such user."""


class PwdUsers:
    """The host's user database (NSS)."""

    def lookup(self, name: str) -> tuple[int, int] | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return entry.pw_uid, entry.pw_gid


@dataclass(frozen=True)
class RunnerFileFacts:
    """`.runner` in the lane directory: absent, ours (names this lane and repository) or
    foreign (names something else, or cannot be read or parsed: never assumed ours)."""

    state: str
    agent_name: str | None = None
    git_hub_url: str | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "agent_name": self.agent_name,
            "git_hub_url": self.git_hub_url,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class RunnerDirFacts:
    path: str
    root_exists: bool
    exists: bool
    owner_uid: int | None
    mode: int | None
    config_sh: str  # absent | file | dir | symlink | other
    run_sh: str
    runner_file: RunnerFileFacts

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "registration_root_exists": self.root_exists,
            "exists": self.exists,
            "owner_uid": self.owner_uid,
            "mode": None if self.mode is None else f"{self.mode & 0o7777:04o}",
            "config_sh": self.config_sh,
            "run_sh": self.run_sh,
            "runner_file": self.runner_file.as_dict(),
        }


@dataclass(frozen=True)
class DropinFacts:
    """state: absent | owned (our marks, valid hash) | foreign (anything else at our path)."""

    path: str
    state: str
    expected_hash: str
    marks: DropinMarks | None = None
    problem: str | None = None

    @property
    def current(self) -> bool:
        return (
            self.state == "owned"
            and self.marks is not None
            and (self.marks.hash == self.expected_hash)
        )

    @property
    def hash_on_disk(self) -> str | None:
        return self.marks.content_hash if self.marks is not None else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "state": self.state,
            "current": self.current,
            "expected_hash": self.expected_hash,
            "hash_on_disk": self.hash_on_disk,
            "lane_mark": self.marks.lane if self.marks else None,
            "hash_mark_valid": self.marks.hash_valid if self.marks else None,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class LaneFacts:
    lane: RunnerLaneMaintainerDesiredState
    service_ids: tuple[int, int] | None
    runner_dir: RunnerDirFacts
    dropin: DropinFacts
    unit: UnitProps
    findings: tuple[Finding, ...]

    @property
    def other_dropins(self) -> list[str]:
        return [p for p in self.unit.drop_in_paths if p != self.dropin.path]

    def as_dict(self) -> dict[str, Any]:
        return {
            "service_user": self.lane.service_user,
            "service_uid": self.service_ids[0] if self.service_ids else None,
            "runner_directory": self.runner_dir.as_dict(),
            "dropin": self.dropin.as_dict(),
            "unit_state": self.unit.as_dict(),
            "other_dropins": self.other_dropins,
            "findings": [
                {"code": f.code, "field": f.field, "message": f.message} for f in self.findings
            ],
        }


def expected_runner_url(lane: RunnerLaneMaintainerDesiredState, policy: HostPolicy) -> str:
    return f"{policy.github_web_url}/{lane.scope}"


def runner_file_facts(
    data: bytes, lane: RunnerLaneMaintainerDesiredState, policy: HostPolicy
) -> RunnerFileFacts:
    """Pure: classify the bytes of a `.runner` file (the runner writes UTF-8 with a BOM)."""
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return RunnerFileFacts("foreign", problem=".runner is not valid JSON")
    if not isinstance(obj, dict):
        return RunnerFileFacts("foreign", problem=".runner is not a JSON object")
    name, url = obj.get("agentName"), obj.get("gitHubUrl")
    if not isinstance(name, str) or not isinstance(url, str):
        return RunnerFileFacts("foreign", problem=".runner lacks agentName or gitHubUrl")
    expected = expected_runner_url(lane, policy).lower()
    if name != lane.lane_name:
        return RunnerFileFacts("foreign", name, url, f".runner names runner {name!r}")
    if url.rstrip("/").lower() != expected:
        return RunnerFileFacts("foreign", name, url, f".runner is registered at {url!r}")
    return RunnerFileFacts("ours", name, url)


def _runner_dir(
    lane: RunnerLaneMaintainerDesiredState, policy: HostPolicy, service_uid: int | None
) -> tuple[RunnerDirFacts, list[Finding]]:
    root_owners = frozenset({0} if service_uid is None else {0, service_uid})
    findings: list[Finding] = []
    with walk(lane.registration_root, "registration_root") as (root_fd, infos):
        findings += secure_dir_findings(infos, "registration_root", frozenset({0}), root_owners)
        if root_fd is None:
            absent = RunnerFileFacts("absent")
            return RunnerDirFacts(
                lane.runner_directory, False, False, None, None, "absent", "absent", absent
            ), findings
        kind = entry_kind(root_fd, lane.lane_name)
        if kind == "absent":
            absent = RunnerFileFacts("absent")
            return RunnerDirFacts(
                lane.runner_directory, True, False, None, None, "absent", "absent", absent
            ), findings
    with walk(lane.runner_directory, "runner_directory") as (fd, infos):
        if fd is None:  # removed between the two walks: report it as absent
            absent = RunnerFileFacts("absent")
            return RunnerDirFacts(
                lane.runner_directory, True, False, None, None, "absent", "absent", absent
            ), findings
        st = os.fstat(fd)
        if service_uid is not None and st.st_uid != service_uid:
            findings.append(
                Finding(
                    "service_user_mismatch",
                    "runner_directory",
                    f"{lane.runner_directory} is owned by uid {st.st_uid}, "
                    f"not {lane.service_user} ({service_uid})",
                )
            )
        if st.st_mode & 0o022:
            findings.append(
                Finding(
                    "unsafe_path_mode",
                    "runner_directory",
                    f"{lane.runner_directory} is writable by group or others",
                )
            )
        read = read_small(fd, ".runner")
        if read.state == "absent":
            runner_file = RunnerFileFacts("absent")
        elif read.state != "regular":
            runner_file = RunnerFileFacts("foreign", problem=f".runner is {read.state}")
        else:
            runner_file = runner_file_facts(read.data, lane, policy)
        return RunnerDirFacts(
            lane.runner_directory,
            True,
            True,
            st.st_uid,
            st.st_mode,
            entry_kind(fd, "config.sh"),
            entry_kind(fd, "run.sh"),
            runner_file,
        ), findings


def dropin_facts(
    lane: RunnerLaneMaintainerDesiredState, unit_dir: str, proxy: str | None = None
) -> DropinFacts:
    """Read our drop-in (never following symlinks) and classify it."""
    dirname = dropin_dir_name(lane.lane_name)
    path = f"{unit_dir}/{dirname}/{DROPIN_NAME}"
    expected = read_dropin_marks(render_dropin(lane, proxy)).content_hash
    with walk(unit_dir, "unit_dir") as (unit_fd, _):
        if unit_fd is None:
            return DropinFacts(path, "absent", expected, problem=f"{unit_dir} does not exist")
        kind = entry_kind(unit_fd, dirname)
        if kind == "absent":
            return DropinFacts(path, "absent", expected)
    with walk(f"{unit_dir}/{dirname}", "dropin_dir") as (fd, _):
        if fd is None:
            return DropinFacts(path, "absent", expected)
        read = read_small(fd, DROPIN_NAME)
    if read.state == "absent":
        return DropinFacts(path, "absent", expected)
    if read.state != "regular":
        return DropinFacts(path, "foreign", expected, problem=f"drop-in is {read.state}")
    try:
        text = read.data.decode("utf-8")
    except UnicodeDecodeError:
        return DropinFacts(path, "foreign", expected, problem="drop-in is not UTF-8")
    marks = read_dropin_marks(text)
    if not marks.owned_by(lane.lane_name):
        problem = (
            "drop-in lacks a valid X-Launchplane-Hash"
            if marks.lane == lane.lane_name
            else "drop-in lacks X-Launchplane-Lane for this lane"
        )
        return DropinFacts(path, "foreign", expected, marks, problem)
    return DropinFacts(path, "owned", expected, marks)


async def gather(
    lane: RunnerLaneMaintainerDesiredState,
    policy: HostPolicy,
    unit_dir: str,
    users: UserDb,
    systemd: SystemdPort,
    *,
    proxy: str | None = None,
) -> LaneFacts:
    """Observe the lane fresh. Symlinks on any path raise LaneRefused; unsafe ownership and
    modes come back as findings, which every verb but `status` refuses."""
    ids = users.lookup(lane.service_user)
    runner_dir, findings = _runner_dir(lane, policy, ids[0] if ids else None)
    dropin = dropin_facts(lane, unit_dir, proxy)
    # no drop-in: systemd is not made to load the instance (only the template would answer)
    load = dropin.state != "absent"
    unit = await systemd.unit_properties(unit_name_for(lane.lane_name), load=load)
    return LaneFacts(lane, ids, runner_dir, dropin, unit, tuple(sorted(set(findings))))
