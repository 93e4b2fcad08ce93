"""Lane-scoped baseline readiness: user, runner directory, Docker isolation and versions, labels."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from agent.contracts import BaselineFinding, BaselineState, HostPolicy
from agent.ports import DockerVersions
from helper.contract.identifiers import is_within
from helper.contract.lane_policy import policy_findings
from helper.contract.lanes import RunnerLaneMaintainerDesiredState

LABEL_CODES = {"missing_managed_label", "missing_required_label"}
PRIVILEGED_GROUPS = frozenset(
    {"root", "sudo", "wheel", "adm", "disk", "docker", "lxd", "incus-admin", "shadow", "kvm"}
)
"""Groups whose members can become root or read what only root should (docker and lxd are
root-equivalent, disk reads every file system, adm and shadow read logs and hashes). A lane's
service user in any of them hands every job that power."""


def _run(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def probe_docker() -> DockerVersions:
    """Versions as the docker CLI reports them; None where absent or unreachable."""
    if shutil.which("docker") is None:
        return DockerVersions(None, None, None)
    cli = _run(["docker", "version", "--format", "{{.Client.Version}}"])
    engine = _run(["docker", "version", "--format", "{{.Server.Version}}"])
    buildx_out = _run(["docker", "buildx", "version"]) or ""
    parts = buildx_out.split()
    buildx = parts[1].lstrip("v").split("-")[0] if len(parts) > 1 else None
    return DockerVersions(engine=engine, cli=cli, buildx=buildx)


def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


def _directory_findings(
    desired: RunnerLaneMaintainerDesiredState, policy: HostPolicy, uid: int | None
) -> list[BaselineFinding]:
    path = desired.runner_directory
    if not any(is_within(path, root) for root in policy.allowed_registration_roots):
        return [BaselineFinding(code="runner_directory_outside_root", message=path)]
    # Walk every component below the root without following links.
    current = Path("/")
    for part in Path(path).parts[1:]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return [
                BaselineFinding(
                    code="runner_directory_missing", message=str(current), fixable_by_apply=True
                )
            ]
        except OSError as exc:
            return [BaselineFinding(code="runner_directory_unreadable", message=str(exc))]
        if stat.S_ISLNK(st.st_mode):
            return [BaselineFinding(code="runner_directory_symlink", message=str(current))]
        if not stat.S_ISDIR(st.st_mode):
            return [BaselineFinding(code="runner_directory_not_directory", message=str(current))]
    if uid is not None and st.st_uid != uid:
        return [
            BaselineFinding(
                code="runner_directory_owner", message=f"{path} owned by uid {st.st_uid}"
            )
        ]
    return []


def _privileged_groups(
    user: pwd.struct_passwd, getgrall: Callable[[], list[grp.struct_group]]
) -> list[BaselineFinding]:
    """Membership (primary or supplementary, from the account database) in a group listed in
    PRIVILEGED_GROUPS. The running process's own groups are checked by the process gate."""
    names = sorted(
        g.gr_name
        for g in getgrall()
        if g.gr_name in PRIVILEGED_GROUPS and (user.pw_name in g.gr_mem or g.gr_gid == user.pw_gid)
    )
    return [
        BaselineFinding(code="privileged_group", message=f"{user.pw_name} is in {name}")
        for name in names
    ]


def _writable_by_others(desired: RunnerLaneMaintainerDesiredState) -> list[BaselineFinding]:
    """No other user can change what the lane runs: the lane directory is writable by no
    one else (its group only with the sticky bit), and every directory above it is writable
    by others only with the sticky bit (as /tmp is: nobody can rename what is not theirs)."""
    findings = []
    lane = Path(desired.runner_directory)
    for current in (*reversed(lane.parents), lane):
        try:
            st = os.lstat(current)
        except OSError:
            break  # missing or unreadable: _directory_findings says so
        if stat.S_ISLNK(st.st_mode):
            break
        mode = st.st_mode
        sticky = bool(mode & stat.S_ISVTX)
        shared = mode & (stat.S_IWGRP | stat.S_IWOTH)
        unsafe = (
            (mode & stat.S_IWOTH or (shared and not sticky))
            if current == lane
            else (shared and not sticky)
        )
        if unsafe:
            findings.append(
                BaselineFinding(
                    code="unsafe_path_permissions",
                    message=f"{current} is mode {stat.S_IMODE(mode):04o}: writable by others",
                )
            )
    return findings


def _docker_credentials(home: str, uid: int) -> list[BaselineFinding]:
    """The service user's Docker config holds no credentials of another user.

    Absent config: isolated. Unreadable or not the user's own: unknown, so not ready."""
    config = Path(home) / ".docker" / "config.json"
    try:
        st = os.lstat(config)
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [BaselineFinding(code="docker_credentials_unknown", message=str(exc))]
    if stat.S_ISLNK(st.st_mode) or st.st_uid != uid:
        return [
            BaselineFinding(
                code="docker_credentials_foreign",
                message=f"{config} is a link or owned by uid {st.st_uid}",
            )
        ]
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [BaselineFinding(code="docker_credentials_unknown", message=type(exc).__name__)]
    if not isinstance(data, dict):
        return [BaselineFinding(code="docker_credentials_unknown", message="not a JSON object")]
    if data.get("credsStore") or data.get("credHelpers"):
        return [
            BaselineFinding(
                code="docker_credentials_unknown",
                message="a credential helper is configured; its store cannot be inspected",
            )
        ]
    return []


def check_baseline(
    desired: RunnerLaneMaintainerDesiredState,
    policy: HostPolicy,
    now: datetime,
    versions: DockerVersions,
    *,
    getpwnam: Callable[[str], pwd.struct_passwd] = pwd.getpwnam,
    getgrall: Callable[[], list[grp.struct_group]] = grp.getgrall,
) -> BaselineState:
    """Every lane-scoped readiness check; each violation is a finding with a stable code.
    Docker's versions are a host fact: the caller probes them once per pass."""
    findings: list[BaselineFinding] = []
    evidence: dict[str, str] = {}
    if desired.service_user not in policy.allowed_service_users:
        findings.append(
            BaselineFinding(code="service_user_not_allowed", message=desired.service_user)
        )
    try:
        entry = getpwnam(desired.service_user)
    except KeyError:
        entry = None
        findings.append(BaselineFinding(code="service_user_missing", message=desired.service_user))
    uid = entry.pw_uid if entry else None
    if entry is not None:
        evidence["service_user_uid"] = str(entry.pw_uid)
        if entry.pw_uid == 0:
            findings.append(BaselineFinding(code="service_user_is_root", message="uid 0"))
        # The runner's unit sets HOME to the runner directory (helper/dropin.py): that is
        # where its jobs' Docker CLI looks for credentials.
        findings += _docker_credentials(desired.runner_directory, entry.pw_uid)
        findings += _privileged_groups(entry, getgrall)
    findings += versions.os_findings  # before registration: config.sh would exit 1 without them
    findings += _directory_findings(desired, policy, uid)
    findings += _writable_by_others(desired)
    evidence["runner_directory"] = desired.runner_directory
    evidence["docker_engine"] = versions.engine or "unavailable"
    evidence["docker_cli"] = versions.cli or "unavailable"
    evidence["docker_buildx"] = versions.buildx or "unavailable"
    if desired.build_work:
        if versions.buildx is None:
            findings.append(
                BaselineFinding(code="buildx_missing", message="build lane needs buildx")
            )
        elif _version_tuple(versions.buildx) < _version_tuple(policy.min_buildx_version):
            findings.append(
                BaselineFinding(
                    code="buildx_too_old",
                    message=f"{versions.buildx} < {policy.min_buildx_version}",
                )
            )
    findings += [
        BaselineFinding(code=f.code, message=f.message)
        for f in policy_findings(desired, policy, (desired,))
        if f.code in LABEL_CODES
    ]
    return BaselineState(checked_at=now, findings=tuple(findings), evidence=evidence)
