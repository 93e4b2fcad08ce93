"""Each completion gate fails on its own condition; all eight pass only on a proven lane."""

from __future__ import annotations

from typing import Any

import pytest

from agent.contracts import Gate, RunnerLaneMaintainerObservedState
from agent.gates import evaluate_gates
from tests.planner import factories as f

HASH = "ab" * 32
DROPINS = f.effective()["drop_in_paths"]
FOREIGN = "/run/systemd/system/launchplane-runner@x.service.d/90-x.conf"
EVIDENCE = {"runner": {"id": 42}}


def proven(**changes: Any) -> RunnerLaneMaintainerObservedState:
    base = f.baseline().model_copy(update={"evidence": {"docker_cli": "27.0"}})
    fields: dict[str, Any] = {"baseline": base}
    fields.update(changes)
    return f.observed(**fields)


def failed(post: RunnerLaneMaintainerObservedState, **kw: Any) -> set[Gate]:
    args: dict[str, Any] = {
        "declared": f.declared(),
        "desired": f.desired(),
        "post": post,
        "expected_dropin_hash": HASH,
        "provider_evidence": EVIDENCE,
        "now": f.NOW,
    }
    args.update(kw)
    return {g.gate for g in evaluate_gates(**args) if not g.passed}


def test_a_proven_lane_passes_all_eight() -> None:
    assert failed(proven()) == set()


@pytest.mark.parametrize(
    ("post", "gate"),
    [
        (lambda: proven(unit=f.unit(active=False)), Gate.UNIT_ACTIVE),
        (lambda: proven(unit=f.unit(unit_file_state="disabled")), Gate.UNIT_ACTIVE),
        (lambda: proven(unit=f.unit(main_pid_in_unit_cgroup=False)), Gate.UNIT_ACTIVE),
        (lambda: proven(unit=f.unit(dropin_hash="cd" * 32)), Gate.UNIT_ACTIVE),
        (lambda: proven(unit=f.unit(main_process=f.process(uids=(0, 0, 0, 0)))), Gate.PROCESS_USER),
        # each lie of the lying-world matrix that a pure observation can show
        (lambda: proven(unit=f.unit(need_daemon_reload=True)), Gate.UNIT_ACTIVE),
        (lambda: proven(unit=f.unit(drop_in_paths=(*DROPINS, FOREIGN))), Gate.UNIT_ACTIVE),
        (lambda: proven(unit=f.unit(drop_in_paths=())), Gate.UNIT_ACTIVE),
        (lambda: proven(unit=f.unit(user="root")), Gate.UNIT_ACTIVE),
        (lambda: proven(unit=f.unit(group="docker")), Gate.UNIT_ACTIVE),
        (lambda: proven(unit=f.unit(working_directory="/tmp")), Gate.UNIT_ACTIVE),
        (lambda: proven(unit=f.unit(exec_start=(("/tmp/forged.sh",),))), Gate.UNIT_ACTIVE),
        (
            lambda: proven(unit=f.unit(main_process=f.process(uids=(998, 0, 998, 998)))),
            Gate.PROCESS_USER,
        ),
        (lambda: proven(unit=f.unit(main_process=f.process(gids=(0, 0, 0, 0)))), Gate.PROCESS_USER),
        (lambda: proven(unit=f.unit(main_process=f.process(groups=(999,)))), Gate.PROCESS_USER),
        (
            lambda: proven(unit=f.unit(main_process=f.process(cmdline=("/bin/bash", "/tmp/x.sh")))),
            Gate.PROCESS_USER,
        ),
        (lambda: proven(unit=f.unit(main_process=None)), Gate.PROCESS_USER),
        (
            lambda: proven(unit=f.unit(outsiders=(f.process(pid=7, cgroup="/user.slice"),))),
            Gate.PROCESS_USER,
        ),
        (lambda: proven(local=f.local(registered=False)), Gate.GITHUB_ONLINE),
        (lambda: proven(github=f.inventory(f.runner(runner_id=43))), Gate.GITHUB_ONLINE),
        (lambda: proven(github=f.inventory(f.runner(labels=(*f.LABELS, "other")))), Gate.LABELS),
        (lambda: proven(github=f.inventory(f.runner(status="offline"))), Gate.GITHUB_ONLINE),
        (lambda: proven(github=f.inventory(f.runner(), f.runner(runner_id=9))), Gate.GITHUB_ONLINE),
        (lambda: proven(github=f.inventory()), Gate.GITHUB_ONLINE),
        (lambda: proven(github=f.inventory(f.runner(labels=f.LABELS[:-1]))), Gate.LABELS),
        (lambda: proven(baseline=None), Gate.BASELINE),
        (lambda: proven(baseline=f.baseline()), Gate.EVIDENCE),
    ],
)
def test_each_gate_fails_on_its_own(post: Any, gate: Gate) -> None:
    assert gate in failed(post())


def test_undeclared_lane_fails_the_declared_gate() -> None:
    assert Gate.DECLARED in failed(proven(), desired=f.desired(repository="evil/repo"))


def test_missing_provider_evidence_fails_the_evidence_gate() -> None:
    assert Gate.EVIDENCE in failed(proven(), provider_evidence={})


def test_unmanaged_unit_fails_the_managed_paths_gate() -> None:
    # An unmarked unit makes restart/remove unavailable for the lane itself.
    assert Gate.MANAGED_PATHS in failed(proven(unit=f.unit(marked=False)))


def test_a_tolerated_operator_dropin_passes_and_others_do_not() -> None:
    operator = DROPINS[0].replace("50-lane.conf", "60-operator.conf")
    post = proven(unit=f.unit(drop_in_paths=(*DROPINS, operator)))
    assert Gate.UNIT_ACTIVE in failed(post)
    assert failed(post, tolerated_dropins=frozenset({"60-operator.conf"})) == set()
