"""Find orphans: undeclared lanes that still carry this host's marks (a marked unit drop-in, a
runner directory the helper made, a GitHub runner labelled for this host)."""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from agent.contracts import GithubRunner, RunnerFile
from agent.github.errors import GitHubError
from agent.observe_local import read_runner_file
from agent.ports import GitHubPort
from helper.contract.dropin import DROPIN_NAME, read_dropin_marks
from helper.contract.errors import UsageError
from helper.contract.identifiers import MANAGED_LABEL, UNIT_PREFIX, lane_name_findings
from helper.contract.lanes import LanesFile, RunnerLaneMaintainerDesiredState
from helper.contract.orphans import (
    including,
    lane_from_dropin,
    orphan_lane,
    scope_from_runner_url,
)

DROPIN_LIMIT = 64 * 1024
DIR_SUFFIX = ".service.d"


@dataclass(frozen=True)
class Orphan:
    """What is left of one undeclared lane on this host and on GitHub."""

    lane_name: str
    dropin: str | None = None
    directory: str | None = None
    runner_file: RunnerFile | None = None
    github: tuple[tuple[str, GithubRunner], ...] = ()
    desired: RunnerLaneMaintainerDesiredState | None = None
    problems: tuple[str, ...] = field(default=())
    owner: str | None = None  # the runner directory's owner (an allowed service user)

    def as_row(self) -> dict[str, object]:
        return {
            "lane": self.lane_name,
            "unit": self.dropin or "-",
            "directory": self.directory or "-",
            "github": ", ".join(f"{repo}#{r.id} {r.status}" for repo, r in self.github) or "-",
            "removable": "yes" if self.desired is not None else "no: " + "; ".join(self.problems),
        }


def _read_small(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        data = fh.read(DROPIN_LIMIT + 1)
    try:
        return data.decode("utf-8") if len(data) <= DROPIN_LIMIT else None
    except UnicodeDecodeError:
        return None


def dropin_orphans(declared: LanesFile, unit_dir: str, host_name: str) -> list[Orphan]:
    """Drop-ins named for an undeclared lane whose marks say the helper wrote them."""
    out: list[Orphan] = []
    try:
        names = sorted(os.listdir(unit_dir))
    except OSError:
        return out
    for name in names:
        if not (name.startswith(UNIT_PREFIX) and name.endswith(DIR_SUFFIX)):
            continue
        lane = name[len(UNIT_PREFIX) : -len(DIR_SUFFIX)].removesuffix(".service")
        if lane_name_findings("lane", lane) or declared.lanes_named(lane):
            continue
        path = f"{unit_dir}/{name}/{DROPIN_NAME}"
        text = _read_small(path)
        if text is None or not read_dropin_marks(text).owned_by(lane):
            continue
        desired = lane_from_dropin(text, host_name, declared.policy)
        problems = () if desired else ("the drop-in is not one this helper renders",)
        out.append(Orphan(lane, dropin=path, desired=desired, problems=problems))
    return out


def directory_orphans(
    declared: LanesFile, host_name: str, user_name: Callable[[int], str | None]
) -> list[Orphan]:
    """Directories right under an allowed registration root, owned by an allowed service
    user (only the helper creates them there), that no declared lane uses."""
    used = {lane.runner_directory for lane in declared.lanes}
    allowed = set(declared.policy.allowed_service_users)
    out: list[Orphan] = []
    for root in declared.policy.allowed_registration_roots:
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            path = f"{root}/{entry.name}"
            if path in used or lane_name_findings("lane", entry.name):
                continue
            st = entry.stat(follow_symlinks=False)
            user = user_name(st.st_uid)
            if not stat.S_ISDIR(st.st_mode) or user not in allowed:
                continue
            runner, error = read_runner_file(path)
            repo = (
                runner and scope_from_runner_url(runner.git_hub_url, declared.policy.github_web_url)
            ) or (None if runner or error else _any_scope(declared))
            desired = repo and orphan_lane(
                entry.name, repo, root, str(user), host_name=host_name, policy=declared.policy
            )
            problems = (
                () if desired else ("no readable .runner names its repository or organization",)
            )
            out.append(
                Orphan(entry.name, None, path, runner, (), desired or None, problems, str(user))
            )
    return out


def _any_scope(declared: LanesFile) -> str | None:
    """A directory with no registration in it (no `.runner`) is removed the same whatever its
    scope: the helper takes the first allowed one (helper.orphan), and so does the agent."""
    allowed = (*declared.policy.allowed_repositories, *declared.policy.allowed_organizations)
    return allowed[0] if allowed else None


def github_orphans(declared: LanesFile, host_name: str, github: GitHubPort) -> list[Orphan]:
    """Runners of allowed repositories and organizations labelled `launchplane-managed` and
    with this host's label whose name no declared lane of that scope has."""
    out: list[Orphan] = []
    policy = declared.policy
    for repo in (*policy.allowed_repositories, *policy.allowed_organizations):
        try:
            runners = github.list_runners(repo)
        except GitHubError:
            continue
        names = {lane.lane_name for lane in declared.lanes if lane.scope.lower() == repo.lower()}
        for runner in runners:
            labels = runner.label_names
            if MANAGED_LABEL in labels and host_name.lower() in labels and runner.name not in names:
                out.append(_github_only(declared, host_name, repo, runner))
    return out


def _github_only(declared: LanesFile, host_name: str, repo: str, runner: GithubRunner) -> Orphan:
    """A labelled runner with nothing of it left here: removing it is GitHub's DELETE alone
    (the directory and user are the policy's first, where nothing of the lane exists)."""
    policy = declared.policy
    roots, users = policy.allowed_registration_roots, policy.allowed_service_users
    desired = (
        orphan_lane(runner.name, repo, roots[0], users[0], host_name=host_name, policy=policy)
        if roots and users
        else None
    )
    problems = () if desired else ("the policy allows no registration root or service user",)
    return Orphan(runner.name, github=((repo, runner),), desired=desired, problems=problems)


def merge(found: Iterable[Orphan], host_name: str, declared: LanesFile) -> list[Orphan]:
    """One Orphan per lane name; the drop-in's rebuilt lane wins over the directory's, which
    wins over the GitHub runner's. A directory whose `.runner` the agent cannot read takes
    its scope from the GitHub runner and keeps its own root and owner."""
    merged: list[Orphan] = []
    for o in _combined(found):
        desired = o.desired
        if desired is None and o.directory and o.owner and o.github:
            root = o.directory.rsplit("/", 1)[0]
            desired = orphan_lane(
                o.lane_name,
                o.github[0][0],
                root,
                o.owner,
                host_name=host_name,
                policy=declared.policy,
            )
        problems = () if desired else o.problems or ("it cannot be rebuilt from its marks",)
        merged.append(replace(o, desired=desired, problems=problems))
    return sorted(merged, key=lambda o: o.lane_name)


def _combined(found: Iterable[Orphan]) -> list[Orphan]:
    """Group by lane name, in the order found (drop-ins, directories, GitHub)."""
    by_name: dict[str, Orphan] = {}
    for o in found:
        have = by_name.get(o.lane_name)
        if have is None:
            by_name[o.lane_name] = o
            continue
        # A known directory without a rebuilt lane must not take the GitHub runner's (its
        # root and user are the policy's first, not the directory's): merge() rebuilds it.
        keep_none = have.desired is None and have.directory is not None
        by_name[o.lane_name] = replace(
            have,
            dropin=have.dropin or o.dropin,
            directory=have.directory or o.directory,
            runner_file=have.runner_file or o.runner_file,
            github=have.github + o.github,
            desired=None if keep_none else have.desired or o.desired,
            problems=have.problems + o.problems,
            owner=have.owner or o.owner,
        )
    return list(by_name.values())


def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def find_orphans(
    declared: LanesFile,
    host_name: str,
    unit_dir: str,
    github: GitHubPort | None,
    users: Callable[[int], str | None] = user_name,
) -> list[Orphan]:
    """Every orphan on this host (and on GitHub, when a client is given), one per lane."""
    found = dropin_orphans(declared, unit_dir, host_name)
    found += directory_orphans(declared, host_name, users)
    if github is not None:
        found += github_orphans(declared, host_name, github)
    return merge(found, host_name, declared)


def removal_lanes(
    declared: LanesFile, lane: str, orphans: Iterable[Orphan], lanes_file: str
) -> LanesFile:
    """lanes.toml plus the orphan `lane` for `remove` to take apart; refused (UsageError)
    when nothing carries its marks or its lane cannot be rebuilt safely."""
    orphan = next((o for o in orphans if o.lane_name == lane), None)
    if orphan is None:
        raise UsageError(
            f"--lane: {lane!r} is not declared in {lanes_file} and nothing carries its marks "
            "(no marked unit drop-in, runner directory or labelled GitHub runner): "
            "nothing to remove"
        )
    if orphan.desired is None:
        raise UsageError(
            f"--lane: {lane!r} is an orphan that cannot be rebuilt safely "
            f"({'; '.join(orphan.problems)}); remove what is left by hand"
        )
    return including(declared, orphan.desired)
