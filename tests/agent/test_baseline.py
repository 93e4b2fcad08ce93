"""Lane-scoped baseline readiness: each violation has its own code."""

from __future__ import annotations

import grp
import json
import os
import pwd
from pathlib import Path
from typing import Any

import pytest

from agent.baseline import check_baseline
from agent.osdeps import CODE, os_dependency_findings
from agent.ports import DockerVersions
from helper.contract.lanes import HostPolicy
from tests.planner import factories as f

ME = 4242 if os.getuid() == 0 else os.getuid()


def entry(home: Path, uid: int = ME) -> pwd.struct_passwd:
    return pwd.struct_passwd(("launchplane-runner", "x", uid, uid, "", str(home), "/bin/false"))


def run(
    tmp_path: Path,
    *,
    build_work: bool = False,
    buildx: str | None = "0.12.1",
    uid: int = ME,
    groups: tuple[grp.struct_group, ...] = (),
    **desired: Any,
) -> set[str]:
    root = tmp_path / "runners"
    policy = HostPolicy(
        allowed_repositories=(f.REPO,),
        approved_hosts=(f.HOST,),
        allowed_registration_roots=(str(root),),
        allowed_service_users=(f.USER,),
    )
    lane = f.desired(registration_root=str(root), build_work=build_work, **desired)
    home = tmp_path / "home"
    state = check_baseline(
        lane,
        policy,
        f.NOW,
        DockerVersions("27.1", "27.1", buildx),
        getpwnam=lambda name: (
            entry(home, uid) if name == f.USER else (_ for _ in ()).throw(KeyError(name))
        ),
        getgrall=lambda: list(groups),
    )
    assert state.evidence["docker_buildx"] == (buildx or "unavailable")
    return {x.code for x in state.findings}


def lane_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runners" / f.LANE
    d.mkdir(parents=True)
    if os.getuid() == 0:
        os.chown(d, ME, ME)
    return d


def test_ready_lane_has_no_findings(tmp_path: Path) -> None:
    lane_dir(tmp_path)
    assert run(tmp_path) == set()


def test_missing_directory_is_fixable_by_apply(tmp_path: Path) -> None:
    assert run(tmp_path) == {"runner_directory_missing"}


def test_symlinked_directory(tmp_path: Path) -> None:
    (tmp_path / "runners").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runners" / f.LANE).symlink_to(tmp_path / "elsewhere")
    assert run(tmp_path) == {"runner_directory_symlink"}


def test_directory_owned_by_another_user(tmp_path: Path) -> None:
    lane_dir(tmp_path)
    assert run(tmp_path, uid=ME + 4242) == {"runner_directory_owner"}


def test_service_user_missing_and_not_allowed(tmp_path: Path) -> None:
    lane_dir(tmp_path)
    assert {"service_user_missing", "service_user_not_allowed"} <= run(
        tmp_path, service_user="nobody2"
    )


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ({"credsStore": "desktop"}, "docker_credentials_unknown"),
        ("not json", "docker_credentials_unknown"),
    ],
)
def test_docker_credentials_that_cannot_be_vouched_for(
    tmp_path: Path, content: Any, code: str
) -> None:
    lane_dir(tmp_path)
    cfg = tmp_path / "runners" / f.LANE / ".docker" / "config.json"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(content if isinstance(content, str) else json.dumps(content))
    if os.getuid() == 0:
        os.chown(cfg, ME, ME)
    assert code in run(tmp_path)


def test_docker_config_linked_to_another_users(tmp_path: Path) -> None:
    lane_dir(tmp_path)
    other = tmp_path / "root-docker.json"
    other.write_text(json.dumps({"auths": {"ghcr.io": {"auth": "eA=="}}}))
    cfg = tmp_path / "runners" / f.LANE / ".docker" / "config.json"
    cfg.parent.mkdir(parents=True)
    cfg.symlink_to(other)
    assert "docker_credentials_foreign" in run(tmp_path)


def test_buildx_enforced_only_for_build_lanes(tmp_path: Path) -> None:
    lane_dir(tmp_path)
    assert run(tmp_path, buildx="0.9.1") == set()
    assert run(tmp_path, build_work=True, buildx="0.9.1") == {"buildx_too_old"}
    assert run(tmp_path, build_work=True, buildx=None) == {"buildx_missing"}
    assert run(tmp_path, build_work=True, buildx="0.12.1") == set()


def test_missing_required_labels(tmp_path: Path) -> None:
    lane_dir(tmp_path)
    assert "missing_managed_label" in run(tmp_path, labels=f.LABELS[:2] + f.LABELS[3:])


def group(name: str, gid: int, *members: str) -> grp.struct_group:
    return grp.struct_group((name, "x", gid, list(members)))


@pytest.mark.parametrize("name", ["docker", "sudo", "adm", "disk", "lxd"])
def test_a_privileged_group_is_a_finding(tmp_path: Path, name: str) -> None:
    lane_dir(tmp_path)
    groups = (group(name, 1234, "someone", f.USER), group("launchplane-runner", ME, f.USER))
    assert "privileged_group" in run(tmp_path, groups=groups)


def test_a_privileged_primary_group_is_a_finding(tmp_path: Path) -> None:
    lane_dir(tmp_path)
    assert "privileged_group" in run(tmp_path, groups=(group("docker", ME),))


def test_ordinary_groups_are_fine(tmp_path: Path) -> None:
    lane_dir(tmp_path)
    groups = (group("docker", 1234, "someone"), group("video", 44, f.USER))
    assert "privileged_group" not in run(tmp_path, groups=groups)


@pytest.mark.parametrize(("mode", "unsafe"), [(0o757, True), (0o775, True), (0o1775, False)])
def test_lane_paths_writable_by_others_are_findings(
    tmp_path: Path, mode: int, unsafe: bool
) -> None:
    """A dry run reports them: another user could replace what the lane runs."""
    lane_dir(tmp_path).chmod(mode)
    assert ("unsafe_path_permissions" in run(tmp_path)) is unsafe


def test_a_group_writable_parent_is_a_finding(tmp_path: Path) -> None:
    lane_dir(tmp_path)
    (tmp_path / "runners").chmod(0o775)
    assert "unsafe_path_permissions" in run(tmp_path)


def test_a_missing_os_dependency_is_a_finding_before_any_registration(tmp_path: Path) -> None:
    lane_dir(tmp_path)
    missing = os_dependency_findings({"ldd": "/usr/bin/ldd", "ldconfig": "/sbin/ldconfig"}, "")
    root = tmp_path / "runners"
    policy = HostPolicy(
        allowed_repositories=(f.REPO,),
        approved_hosts=(f.HOST,),
        allowed_registration_roots=(str(root),),
        allowed_service_users=(f.USER,),
    )
    state = check_baseline(
        f.desired(registration_root=str(root)),
        policy,
        f.NOW,
        DockerVersions("27.1", "27.1", "0.12.1", os_findings=tuple(missing)),
        getpwnam=lambda _name: entry(tmp_path / "home"),
        getgrall=list,
    )
    assert any("libicu" in x.message for x in state.findings if x.code == CODE)
    assert not state.ready
