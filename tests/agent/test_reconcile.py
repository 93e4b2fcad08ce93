"""The pass against an in-memory world: a completed record needs every gate, and the
absence of any one yields a failed record that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.contracts import BaselineFinding, Gate, Operation, PlanPolicy
from helper.contract.protocol import VerbResult
from tests.agent.fakes import agent_for
from tests.planner import factories as f

LANE = f.LANE


def apply(key: str = "k-1", operation: Operation = Operation.RECONCILE, **kw: object) -> PlanPolicy:
    verb = "apply" if operation is Operation.RECONCILE else operation.value
    return PlanPolicy(
        operation=operation,
        mode="apply",
        idempotency_key=key,
        confirmation=f"{verb} {LANE}",
        **kw,  # type: ignore[arg-type]
    )


def test_create_ends_in_a_completed_record_with_every_gate(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    record = agent.run(declared.lanes[0], apply())
    assert record.status == "completed", record.error
    assert {g.gate for g in record.gates if g.passed} == set(Gate)
    assert record.observed_post is not None
    assert record.observed_post.unit.active_state == "active"
    assert world.helper_calls == [
        "install-runner",
        "register-runner",
        "install-or-update-unit",
        "daemon-reload",
        "enable-now",
    ]
    steps = [s["step"] for s in record.provider_evidence["steps"]]
    assert steps[0] == "fetch_registration_token"
    assert "wait_online" in steps
    assert record.provider_evidence["registration_token"]["kind"] == "registration"
    assert (tmp_path / "cache" / "runners" / ("a" * 64 + ".tar.gz")).exists()


def test_dry_run_writes_planned_and_requests_no_token(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    record = agent.run(declared.lanes[0], PlanPolicy())
    assert record.status == "planned"
    assert world.tokens_issued == []
    assert world.helper_calls == []
    assert world.runners == {}


def test_service_active_but_github_offline_fails_naming_the_gate(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    world.online_when_running = False
    record = agent.run(declared.lanes[0], apply())
    assert record.status == "failed"
    assert record.failed_gate is Gate.GITHUB_ONLINE


def test_github_online_but_service_inactive_fails(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    agent.run(declared.lanes[0], apply("k-0"))
    world.unit_active = False
    world.set_online(True)  # something else keeps the registration online
    record = agent.run(declared.lanes[0], apply("k-1", Operation.RESTART))
    assert record.status in {"completed", "failed"}
    # restart brings it back; but an inactive unit with GitHub online must fail verification:
    world.unit_active = False
    agent.applier.helper.call = lambda *a, **k: VerbResult.from_result({"noop": True})  # type: ignore[method-assign]
    record = agent.run(declared.lanes[0], apply("k-2"))
    assert record.status == "failed"
    assert record.failed_gate is Gate.UNIT_ACTIVE


def test_baseline_not_ready_after_start_fails(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    world.baseline_findings = (
        BaselineFinding(code="runner_directory_missing", message="x", fixable_by_apply=True),
    )
    record = agent.run(declared.lanes[0], apply())
    assert record.status == "failed"
    assert record.failed_gate is Gate.BASELINE


def test_baseline_missing_blocks_and_fails(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    world.baseline_missing = True
    record = agent.run(declared.lanes[0], apply())
    assert record.status == "failed"
    assert "baseline_missing" in (record.error or "")
    assert world.tokens_issued == []


def test_wrong_main_pid_user_fails(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    world.main_pid_uid = 65534
    record = agent.run(declared.lanes[0], apply())
    assert record.status == "failed"
    assert record.failed_gate is Gate.PROCESS_USER


def test_apply_without_confirmation_changes_nothing(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    policy = PlanPolicy(mode="apply", idempotency_key="k")
    record = agent.run(declared.lanes[0], policy)
    assert record.status == "failed"
    assert "missing_confirmation" in (record.error or "")
    assert world.helper_calls == []
    assert world.tokens_issued == []


def test_replay_of_an_apply_key_returns_the_stored_record(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    first = agent.run(declared.lanes[0], apply("same"))
    calls = list(world.helper_calls)
    again = agent.run(declared.lanes[0], apply("same"))
    assert again == first
    assert world.helper_calls == calls


def test_a_failed_step_is_recorded_with_its_name_and_the_next_pass_can_finish(
    tmp_path: Path,
) -> None:
    agent, world, declared = agent_for(tmp_path)
    world.fail_verb = "enable-now"
    record = agent.run(declared.lanes[0], apply("k-1"))
    assert record.status == "failed"
    assert (record.error or "").startswith("enable-now")
    world.fail_verb = None
    record = agent.run(declared.lanes[0], apply("k-2"))
    assert record.status == "completed", record.error
    assert record.plan.action.value == "reconcile"


def test_restart_and_remove(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    agent.run(declared.lanes[0], apply("k-1"))
    restarted = agent.run(declared.lanes[0], apply("k-2", Operation.RESTART))
    assert restarted.status == "completed", restarted.error
    removed = agent.run(declared.lanes[0], apply("k-3", Operation.REMOVE))
    assert removed.status == "removed", removed.error
    assert world.runners == {}
    assert not world.lane_dir(LANE).exists()
    assert (
        world.helper_calls[-5:]
        == [
            "stop",
            "disable",
            "remove-unit",
            "daemon-reload",
            "unregister-runner",
        ]
        or "remove-runner-directory" in world.helper_calls
    )


def test_remove_refuses_an_unmanaged_runner(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    agent.run(declared.lanes[0], apply("k-1"))
    (rid, runner) = next(iter(world.runners.items()))
    labels = tuple(lb for lb in runner.labels if lb.name != "launchplane-managed")
    world.runners[rid] = runner.model_copy(update={"labels": labels})
    calls = len(world.helper_calls)
    record = agent.run(declared.lanes[0], apply("k-2", Operation.REMOVE))
    assert record.status == "failed"
    assert "unmanaged_runner" in (record.error or "")
    assert len(world.helper_calls) == calls


def test_reconcile_pass_applies_only_apply_lanes_and_is_quiet_when_steady(tmp_path: Path) -> None:
    agent, _, _ = agent_for(tmp_path, apply=True)
    first = agent.reconcile_pass()
    assert [r.status for r in first] == ["completed"]
    count = len(list(agent.recorder.store.records()))
    second = agent.reconcile_pass(every_lane=True)
    assert second[0].status == "completed"
    # The first supervised pass is a new situation: it is planned and verified once more.
    assert len(list(agent.recorder.store.records())) == count + 2
    third = agent.reconcile_pass(every_lane=True)
    assert (
        len(list(agent.recorder.store.records())) == count + 2
    )  # identical situation: nothing new
    assert third[0].record_id == second[0].record_id


@pytest.mark.parametrize("apply_flag", [False])
def test_reconcile_pass_never_mutates_lanes_without_apply(tmp_path: Path, apply_flag: bool) -> None:
    agent, world, _ = agent_for(tmp_path, apply=apply_flag)
    records = agent.reconcile_pass()
    assert [r.status for r in records] == ["planned"]
    assert world.helper_calls == []
    assert world.tokens_issued == []


def test_token_values_never_reach_records_logs_or_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from agent import logs
    from agent.render import render_record
    from helper.contract.redact import variants

    stream = io.StringIO()
    logs.configure(json_output=True, stream=stream)
    try:
        agent, _, declared = agent_for(tmp_path)
        issued: list[str] = []
        github = agent.observer.github
        original = github.registration_token

        def spy(repository: str):  # type: ignore[no-untyped-def]
            token = original(repository)
            issued.append(token.token.get_secret_value())
            return token

        github.registration_token = spy  # type: ignore[method-assign]
        created = agent.run(declared.lanes[0], apply("k-1"))
        removed = agent.run(declared.lanes[0], apply("k-2", Operation.REMOVE))
        print(render_record(created), render_record(removed))
    finally:
        logs.configure(json_output=False)
    assert issued
    haystack = stream.getvalue() + capsys.readouterr().out
    haystack += "".join(p.read_text() for p in (tmp_path / "audits").rglob("*.json"))
    haystack += created.model_dump_json() + removed.model_dump_json()
    for token in issued:
        for form in variants(token):
            assert form not in haystack
    assert "expires_at" in haystack


def test_docker_is_probed_once_per_pass_not_per_lane(tmp_path: Path) -> None:
    from agent.ports import DockerVersions

    agent, _, declared = agent_for(tmp_path)
    probes: list[int] = []

    def probe() -> DockerVersions:
        probes.append(1)
        return DockerVersions("27.1", "27.1", None)

    agent.observer.host.docker = probe  # type: ignore[method-assign]
    agent.observer.observe([declared.lanes[0]] * 5)
    assert probes == [1]
