"""Pure classifier: one lane's observed state -> its observed shape, with the reasons."""

from __future__ import annotations

from dataclasses import dataclass

from agent.contracts import (
    GithubRunner,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    Shape,
)
from agent.unit_states import LoadState
from helper.contract.identifiers import MANAGED_LABEL

UNIT_UNKNOWN = LoadState.UNKNOWN  # load_state when systemd could not be reached
GITHUB_NOT_OBSERVED = "GitHub inventory was not observed"
DEFAULT_READ_ONLY_LABELS = frozenset({"self-hosted", "linux", "x64", "arm64", "arm", "macos"})


@dataclass(frozen=True)
class Classification:
    shape: Shape
    reasons: tuple[str, ...] = ()


def label_problems(desired: RunnerLaneMaintainerDesiredState, runner: GithubRunner) -> list[str]:
    """The one label rule, for the classifier and the labels gate: the runner's label set
    equals the declared set plus GitHub's read-only defaults — every declared label present,
    no undeclared custom label (case-insensitive)."""
    want = {label.lower() for label in desired.labels}
    custom = {label.name.lower() for label in runner.labels if label.type == "custom"}
    problems = []
    if missing := sorted(want - runner.label_names):
        problems.append(f"missing labels: {', '.join(missing)}")
    if extra := sorted(custom - want):
        problems.append(f"undeclared labels: {', '.join(extra)}")
    return problems


def labels_match(desired: RunnerLaneMaintainerDesiredState, runner: GithubRunner) -> bool:
    return not label_problems(desired, runner)


def repository_of_url(url: str) -> str:
    """`owner/name` (lowercase) from a github.com or GitHub Enterprise Server repository URL."""
    path = url.split("://", 1)[-1].split("/", 1)[-1] if "://" in url else url
    return path.strip("/").removesuffix(".git").lower()


def is_managed_runner(runner: GithubRunner) -> bool:
    """A GitHub runner is ours only if it carries the launchplane-managed label."""
    return MANAGED_LABEL in runner.label_names


def _conflicts(
    desired: RunnerLaneMaintainerDesiredState, observed: RunnerLaneMaintainerObservedState
) -> list[str]:
    reasons: list[str] = []
    if observed.github is None:
        reasons.append(GITHUB_NOT_OBSERVED)
    elif len(observed.github.runners) > 1:
        reasons.append(f"{len(observed.github.runners)} GitHub runners share the lane name")
    local = observed.local
    if local.is_symlink or (local.exists and not local.is_directory):
        reasons.append(f"{local.path} is not a real directory")
    if local.runner_file_error is not None:
        reasons.append(f".runner is unreadable: {local.runner_file_error}")
    rf = local.runner_file
    if rf is not None:
        if rf.agent_name != desired.lane_name:
            reasons.append(f".runner names agent {rf.agent_name!r}")
        if repository_of_url(rf.git_hub_url) != desired.scope.lower():
            reasons.append(".runner is registered to another repository or organization")
        runners = observed.github.runners if observed.github else ()
        if len(runners) == 1 and rf.agent_id is None:
            reasons.append(".runner has no agentId: which registration it holds is unproven")
        elif len(runners) == 1 and runners[0].id != rf.agent_id:
            reasons.append(".runner agent id differs from the GitHub runner id")
    if local.stale_migrated_files and rf is None:
        reasons.append("stale _migrated files without a .runner")
    unit = observed.unit
    if unit.load_state == UNIT_UNKNOWN:
        reasons.append(f"{unit.unit_name}: systemd could not be asked")
    elif unit.exists and not unit.managed:
        reasons.append(f"{unit.unit_name} exists without launchplane ownership marks")
    elif unit.managed and unit.dropin_lane_mark != desired.lane_name:
        reasons.append(f"{unit.unit_name} is marked for lane {unit.dropin_lane_mark!r}")
    return reasons


def classify(
    desired: RunnerLaneMaintainerDesiredState, observed: RunnerLaneMaintainerObservedState
) -> Classification:
    """Map observed state to one of the seven shapes; anything inconsistent is a conflict."""
    reasons = _conflicts(desired, observed)
    if reasons:
        return Classification(Shape.UNKNOWN_CONFLICT, tuple(reasons))
    inventory = observed.github.runners if observed.github is not None else ()
    runner = inventory[0] if inventory else None
    local_present = observed.local.runner_file is not None or observed.unit.exists
    if runner is None:
        return Classification(Shape.LOCAL_SERVICE_ONLY if local_present else Shape.ABSENT)
    if not local_present:
        return Classification(Shape.GITHUB_ONLY)
    if not labels_match(desired, runner):
        return Classification(Shape.MISMATCHED_LABELS)
    if observed.unit.active_state == "active":
        return Classification(Shape.SUPERVISED_ACTIVE)
    return Classification(Shape.SUPERVISED_INACTIVE)
