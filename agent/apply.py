"""Apply: run a plan's steps through GitHub and the helper, one handler per `Step`."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.classify import DEFAULT_READ_ONLY_LABELS
from agent.contracts import (
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    RunnerLaneMaintainerPlan,
    Step,
)
from agent.drain import wait_until_idle
from agent.errors import PlanStepFailed
from agent.github.models import RunnerToken
from agent.github.payloads import select_download
from agent.logs import get_logger
from agent.ports import SILENT, GitHubPort, HelperPort, Progress, Sleep
from agent.versions import version_of
from helper.contract.errors import LaunchplaneError
from helper.contract.protocol import Verb

log = get_logger(__name__)

# The helper verbs a step maps to one for one; the other steps talk to GitHub.
HELPER_VERBS: dict[Step, Verb] = {
    Step.INSTALL_OR_UPDATE_UNIT: "install-or-update-unit",
    Step.DAEMON_RELOAD: "daemon-reload",
    Step.ENABLE_NOW: "enable-now",
    Step.RESTART: "restart",
    Step.STOP: "stop",
    Step.DISABLE: "disable",
    Step.REMOVE_UNIT: "remove-unit",
    Step.REMOVE_DIRECTORY: "remove-runner-directory",
}
UNIT_FILE_STEPS = frozenset({Step.INSTALL_OR_UPDATE_UNIT, Step.REMOVE_UNIT})


@dataclass
class StepLog:
    """What ran, how long it took, and what the helper or GitHub said (redacted)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, step: str, seconds: float, **detail: Any) -> None:
        self.entries.append({"step": step, "seconds": round(seconds, 4), **detail})


@dataclass
class Applying:
    """One lane's apply in progress: what earlier steps handed to later ones."""

    desired: RunnerLaneMaintainerDesiredState
    pre: RunnerLaneMaintainerObservedState
    evidence: dict[str, Any]
    tokens: dict[str, RunnerToken] = field(default_factory=dict)
    archive: str | None = None
    reload_needed: bool = True
    drain_wait: int | None = None  # the plan's --wait; None: the lane's runner_drain_wait_seconds

    @property
    def repository(self) -> str:
        """The runner scope: `owner/name` or an organization's login."""
        return self.desired.scope

    @property
    def runners(self) -> tuple[Any, ...]:
        return self.pre.github.runners if self.pre.github else ()


@dataclass(frozen=True)
class Applier:
    """Runs each step of a ready plan with its handler; a failure stops the apply."""

    github: GitHubPort
    helper: HelperPort
    cache_dir: Path
    architecture: str
    sleep: Sleep = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    poll_interval: float = 5.0
    progress: Progress = SILENT

    def apply(self, result: RunnerLaneMaintainerPlan, run: Applying, steps: StepLog) -> None:
        todo = [step for step in result.steps if step is not Step.VERIFY]
        for number, step in enumerate(todo, 1):
            self.progress.step(run.desired.lane_name, f"step {number}/{len(todo)}: {step.value}")
            started = time.monotonic()
            try:
                detail = STEP_HANDLERS[step](self, run, step)
            except PlanStepFailed:
                steps.add(step.value, time.monotonic() - started, ok=False)
                raise
            except (LaunchplaneError, OSError) as exc:
                steps.add(step.value, time.monotonic() - started, ok=False)
                raise PlanStepFailed(step.value, str(exc)) from None
            steps.add(step.value, time.monotonic() - started, ok=True, result=detail)

    def download(self, run: Applying) -> str:
        """The runner archive, sha256-verified, at <cache>/runners/<sha256>.tar.gz."""
        download = select_download(
            self.github.runner_downloads(run.repository), "linux", self.architecture
        )
        version = run.desired.runner_version_policy
        if version != "latest" and f"-{version}.tar.gz" not in download.filename:
            raise PlanStepFailed(
                "download_runner", f"GitHub offers {download.filename}, not {version}"
            )
        path = self.github.download_runner(download, self.cache_dir / "downloads")
        sha = (download.sha256_checksum or "").lower()
        runners_dir = self.cache_dir / "runners"
        runners_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        target = runners_dir / f"{sha}.tar.gz"
        runners_dir.chmod(0o755)  # the helper is root without CAP_DAC_READ_SEARCH
        if not target.exists():
            tmp = runners_dir / f".{secrets.token_hex(6)}"
            os.link(path, tmp)
            os.replace(tmp, target)
        target.chmod(0o644)
        release = version_of(download.filename)
        if release is not None:  # what observe reads back as the installed version
            index = runners_dir / f".{secrets.token_hex(6)}"
            index.write_text(f"{release}\n", encoding="ascii")
            index.chmod(0o644)
            os.replace(index, runners_dir / f"{sha}.version")
        run.evidence["runner_archive"] = {
            "filename": download.filename,
            "sha256": sha,
            "version": release,
        }
        return sha


Detail = dict[str, Any]
Handler = Callable[[Applier, Applying, Step], Detail]


def _registration_token(a: Applier, run: Applying, _step: Step) -> Detail:
    run.tokens["registration"] = a.github.registration_token(run.repository)
    run.evidence["registration_token"] = run.tokens["registration"].evidence()
    return {}


def _no_remove_token(_a: Applier, _run: Applying, step: Step) -> Detail:
    """Removal deletes the registration through the REST API: no remove token is ever
    fetched, so none can reach the host (issue 13). Plans no longer name this step."""
    raise PlanStepFailed(step.value, "remove tokens are never fetched (DELETE is used)")


def _wait_idle(a: Applier, run: Applying, step: Step) -> Detail:
    """Bounded wait for GitHub to show the runner idle; nothing is touched while it is busy."""
    wait = run.desired.runner_drain_wait_seconds if run.drain_wait is None else run.drain_wait
    drained = wait_until_idle(
        a.github,
        run.repository,
        run.desired.lane_name,
        wait=wait,
        sleep=a.sleep,
        monotonic=a.monotonic,
        poll_interval=a.poll_interval,
        progress=lambda line: log.info("drain.progress", state=line),
    )
    if not drained.idle:
        raise PlanStepFailed(
            step.value,
            f"the runner is still busy after {drained.waited_seconds:.0f} s (limit {wait} s: "
            "runner_drain_wait_seconds, or --wait); nothing was changed: try again later, "
            "wait longer, or interrupt the job with --drain",
        )
    return drained.detail()


def _download(a: Applier, run: Applying, _step: Step) -> Detail:
    run.archive = a.download(run)
    return {}


def _install_runner(a: Applier, run: Applying, _step: Step) -> Detail:
    name = run.desired.lane_name
    return a.helper.call("install-runner", name, archive_sha256=run.archive).detail


def _register(a: Applier, run: Applying, _step: Step) -> Detail:
    token = run.tokens["registration"].token
    return a.helper.call("register-runner", run.desired.lane_name, token=token).detail


def _unregister(a: Applier, run: Applying, _step: Step) -> Detail:
    """The local registration files only (no token, no network, no runner code)."""
    return a.helper.call("unregister-runner", run.desired.lane_name).detail


def _delete_github_runner(a: Applier, run: Applying, _step: Step) -> Detail:
    return {str(r.id): a.github.delete_runner(run.repository, r.id) for r in run.runners}


def _set_labels(a: Applier, run: Applying, _step: Step) -> Detail:
    custom = [x for x in run.desired.labels if x.lower() not in DEFAULT_READ_ONLY_LABELS]
    detail: Detail = {}
    for runner in run.runners:
        labels = a.github.set_custom_labels(run.repository, runner.id, custom)
        detail[str(runner.id)] = sorted(label.name for label in labels)
    return detail


def _helper_verb(a: Applier, run: Applying, step: Step) -> Detail:
    """A step that is one helper verb; a unit-file verb says whether a reload is needed."""
    if step is Step.DAEMON_RELOAD and not run.reload_needed:
        return {"skipped": "drop-in unchanged"}
    answer = a.helper.call(HELPER_VERBS[step], run.desired.lane_name)
    if step in UNIT_FILE_STEPS:
        run.reload_needed = answer.reload_needed
    return answer.detail


STEP_HANDLERS: dict[Step, Handler] = {
    Step.WAIT_IDLE: _wait_idle,
    Step.FETCH_REGISTRATION_TOKEN: _registration_token,
    Step.FETCH_REMOVE_TOKEN: _no_remove_token,
    Step.DOWNLOAD_RUNNER: _download,
    Step.INSTALL_RUNNER: _install_runner,
    Step.REGISTER_RUNNER: _register,
    Step.UNREGISTER_RUNNER: _unregister,
    Step.DELETE_GITHUB_RUNNER: _delete_github_runner,
    Step.SET_LABELS: _set_labels,
    **dict.fromkeys(HELPER_VERBS, _helper_verb),
}
