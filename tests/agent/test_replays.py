"""Replays that prove (issue "No false green"): a stored `completed` is answered only while
its gates hold on a fresh observation, and an idempotency key names one request."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.contracts import Operation
from agent.errors import ProofStale
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
