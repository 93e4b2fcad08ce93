"""Replays that prove (issue "No false green"): a stored `completed` is answered only while
its gates hold on a fresh observation, and an idempotency key names one request."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from agent import cli
from agent.contracts import Operation
from agent.errors import ProofStale
from agent.render import REPLAYED, record_json, render_record
from helper.contract.errors import UsageError
from tests.agent.fakes import agent_for
from tests.agent.test_reconcile import apply


def test_a_timer_pass_acts_when_the_proven_lane_was_disabled(tmp_path: Path) -> None:
    agent, world, _ = agent_for(tmp_path, apply=True)
    agent.reconcile_pass(every_lane=True)  # create
    (first,) = agent.reconcile_pass(every_lane=True)  # the first pass that sees it supervised
    assert first.status == "completed", first.error
    assert agent.reconcile_pass(every_lane=True) == [first]  # steady: the proof holds
    world.unit_enabled = False  # `systemctl disable` by hand
    world.helper_calls.clear()
    (again,) = agent.reconcile_pass(every_lane=True)
    assert again.record_id != first.record_id  # never the stored proof
    assert again.status == "completed", again.error
    assert "enable-now" in world.helper_calls
    assert world.unit_enabled


def test_the_same_key_for_another_request_is_refused_naming_the_first(tmp_path: Path) -> None:
    agent, _, declared = agent_for(tmp_path)
    lane = declared.lanes[0]
    restarted = agent.run(lane, apply("shared", Operation.RECONCILE))
    assert restarted.status == "completed", restarted.error
    with pytest.raises(UsageError, match=restarted.record_id):
        agent.run(lane, apply("shared", Operation.REMOVE))


def test_a_stored_proof_that_no_longer_holds_is_not_replayed(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    lane = declared.lanes[0]
    assert agent.run(lane, apply("k-1")).status == "completed"
    world.unit_active = False
    with pytest.raises(ProofStale, match="no longer holds"):
        agent.run(lane, apply("k-1"))
    world.unit_active = True
    assert agent.run(lane, apply("k-1")).status == "completed"  # holds again: replayed


def test_a_refusal_before_any_action_is_not_kept_under_the_key(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path)
    lane = declared.lanes[0]
    typo = apply("k-typo").model_copy(update={"confirmation": "aply it"})
    refused = agent.run(lane, typo)
    assert refused.status == "failed"
    assert refused.idempotency_key is None
    record = agent.run(lane, apply("k-typo"))  # the retry the next step told them to make
    assert record.status == "completed", record.error
    assert "enable-now" in world.helper_calls


def test_replays_say_replayed_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record answered from the store is marked `replayed`; one written now is not. One
    Recorder serves one command (agent.wiring builds it), so a new command starts afresh."""
    agent, _, declared = agent_for(tmp_path)
    lane = declared.lanes[0]
    done = agent.run(lane, apply("k-1"))
    assert done.status == "completed", done.error
    assert not agent.recorder.is_replay(done)
    agent.recorder.written.clear()  # the next command
    again = agent.run(lane, apply("k-1"))
    assert again == done
    assert agent.recorder.is_replay(again)

    args = argparse.Namespace(json=True)
    capsys.readouterr()  # the passes' own log lines
    assert cli._print_records(args, [again], agent.recorder.is_replay) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert shown["replayed"] is True
    assert shown["record_id"] == done.record_id
    args.json = False
    cli._print_records(args, [again], agent.recorder.is_replay)
    assert f"replay  {REPLAYED}" in capsys.readouterr().out

    fresh = agent.run(lane, apply("k-2"))
    assert record_json(fresh, replayed=agent.recorder.is_replay(fresh))["replayed"] is False
    assert "replay " not in render_record(fresh, replayed=agent.recorder.is_replay(fresh))


def test_a_steady_timer_pass_answers_its_proof_as_a_replay(tmp_path: Path) -> None:
    agent, _, _ = agent_for(tmp_path, apply=True)
    agent.reconcile_pass(every_lane=True)  # create
    (proof,) = agent.reconcile_pass(every_lane=True)
    assert proof.status == "completed", proof.error
    assert not agent.recorder.is_replay(proof)
    agent.recorder.written.clear()  # the next timer pass is a new process
    (steady,) = agent.reconcile_pass(every_lane=True)
    assert steady == proof
    assert agent.recorder.is_replay(steady)
