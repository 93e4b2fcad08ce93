"""Audit retention (issue 15): records older than the retention go after a pass, except each
lane's latest `completed`; nothing newer than the retention is ever deleted."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.audit_store import DEFAULT_RETENTION_DAYS, FilesystemAuditStore, record_id_for
from agent.contracts import RunnerLaneMaintainerAuditRecord
from agent.settings import load_settings
from agent.wiring import after_pass
from helper.contract.errors import ConfigError
from tests.agent.fakes import NOW, agent_for
from tests.agent.test_audit_store import record
from tests.planner import factories as f

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def proof(tmp_path_factory: pytest.TempPathFactory) -> RunnerLaneMaintainerAuditRecord:
    """A real `completed` record (every gate passed), from a pass in the fake world."""
    agent, _, _ = agent_for(tmp_path_factory.mktemp("world"), apply=True)
    (completed,) = agent.reconcile_pass()
    assert completed.status == "completed"
    return completed


def stored(
    store: FilesystemAuditStore,
    status: str,
    at: datetime,
    key: str,
    proof: RunnerLaneMaintainerAuditRecord | None = None,
) -> str:
    """A record created at `at`, its file as old as the record (as a real pass leaves it)."""
    if proof is not None:
        rid = record_id_for(status, at)
        made = proof.model_copy(update={"created_at": at, "record_id": rid, "idempotency_key": key})
    else:
        made = record(status, key, created_at=at)
    written = store.append(made)
    path = store.root / f.LANE / f"{written.record_id}.json"
    os.utime(path, (at.timestamp(), at.timestamp()))
    return written.record_id


def ids(store: FilesystemAuditStore) -> set[str]:
    return {r.record_id for r in store.records(f.LANE)}


def test_old_records_go_but_the_latest_completed_and_recent_ones_stay(
    tmp_path: Path, proof: RunnerLaneMaintainerAuditRecord
) -> None:
    store = FilesystemAuditStore(tmp_path)
    old_proof = stored(store, "completed", NOW - 200 * DAY, "a", proof)
    last_proof = stored(store, "completed", NOW - 120 * DAY, "b", proof)
    old_failed = stored(store, "failed", NOW - 100 * DAY, "c")
    old_planned = stored(store, "planned", NOW - 91 * DAY, "d")
    recent = stored(store, "failed", NOW - 89 * DAY, "e")
    fresh = stored(store, "planned", NOW - DAY, "f")
    assert store.prune(NOW - 90 * DAY) == 3
    assert ids(store) == {last_proof, recent, fresh}
    assert not ids(store) & {old_proof, old_failed, old_planned}
    assert store.prune(NOW - 90 * DAY) == 0  # idempotent


def test_a_young_record_in_an_old_file_and_the_reverse_are_kept(tmp_path: Path) -> None:
    """Both the record's time and its file's must be older: neither alone deletes."""
    store = FilesystemAuditStore(tmp_path)
    young = store.append(record("failed", "y", created_at=NOW - DAY)).record_id
    os.utime(store.root / f.LANE / f"{young}.json", (0, 0))
    old_record_new_file = store.append(record("failed", "o", created_at=NOW - 400 * DAY))
    assert store.prune(NOW - 90 * DAY) == 0
    assert ids(store) == {young, old_record_new_file.record_id}


def test_after_a_pass_retention_uses_the_configured_days(tmp_path: Path) -> None:
    agent, _, _ = agent_for(tmp_path)
    store = agent.recorder.store
    assert isinstance(store, FilesystemAuditStore)
    kept = stored(store, "failed", NOW - 9 * DAY, "k")
    gone = stored(store, "failed", NOW - 11 * DAY, "g")
    paths = load_settings(
        {"LAUNCHPLANE_AUDIT_RETENTION_DAYS": "10", "LAUNCHPLANE_METRICS_FILE": ""}
    )
    after_pass(paths, agent, [], 0.0)
    assert kept in ids(store)
    assert gone not in ids(store)


def test_the_default_is_documented_and_a_bad_value_is_a_configuration_error() -> None:
    assert load_settings({}).audit_retention_days == DEFAULT_RETENTION_DAYS == 90
    text = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    assert f"{DEFAULT_RETENTION_DAYS} days" in text
    for bad in ("0", "-1", "ninety", ""):
        with pytest.raises(ConfigError, match="LAUNCHPLANE_AUDIT_RETENTION_DAYS"):
            load_settings({"LAUNCHPLANE_AUDIT_RETENTION_DAYS": bad})
