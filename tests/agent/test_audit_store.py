"""The filesystem audit store is append-only, idempotent per key and traversal-proof."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.audit_store import FilesystemAuditStore, record_id_for
from agent.contracts import PlanPolicy, RunnerLaneMaintainerAuditRecord
from agent.errors import AuditConflict, AuditNotFound
from agent.planner import plan
from helper.contract.redact import REDACTOR
from tests.planner import factories as f


def record(
    status: str = "planned", key: str | None = "key-1", **changes: Any
) -> RunnerLaneMaintainerAuditRecord:
    result = plan(f.declared(), f.desired(), f.absent(), PlanPolicy(), f.NOW)
    fields: dict[str, Any] = {
        "record_id": record_id_for(f.LANE, status, key, f.NOW),
        "idempotency_key": key,
        "lane_name": f.LANE,
        "status": status,
        "created_at": f.NOW,
        "desired": f.desired(),
        "observed_pre": f.absent(),
        "plan": result,
        "error": "x" if status == "failed" else None,
    }
    fields.update(changes)
    return RunnerLaneMaintainerAuditRecord(**fields)


def test_planned_and_terminal_records_are_separate_files(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    store.append(record("planned"))
    store.append(record("failed"))
    assert sorted(r.status for r in store.records(f.LANE)) == ["failed", "planned"]
    assert len(list((tmp_path / f.LANE).glob("*.json"))) == 2


def test_replay_with_same_key_and_payload_returns_the_stored_record(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    first = store.append(record())
    again = store.append(record(observed_pre=f.absent(host_name="elsewhere")))
    assert again == first
    assert again.observed_pre.host_name == f.HOST


def test_replay_with_a_different_payload_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    store.append(record())
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(AuditConflict, match="different payload"):
        store.append(record(desired=f.desired(apply=True)))
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_unkeyed_records_never_collide(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    for _ in range(5):
        store.append(record(key=None))
    assert len(list(store.records())) == 5


@pytest.mark.parametrize("bad", ["../etc/passwd", "/abs", "a/b", "", "UPPER", "x" * 200, "a\x00b"])
def test_ids_cannot_traverse(tmp_path: Path, bad: str) -> None:
    store = FilesystemAuditStore(tmp_path)
    with pytest.raises(AuditNotFound):
        store.get(bad)
    with pytest.raises(AuditConflict):
        store.append(record(record_id=bad))


def test_a_symlinked_record_is_not_followed(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path / "audits")
    store.append(record())
    (tmp_path / "audits" / f.LANE / "k-planned-evil.json").symlink_to("/etc/passwd")
    with pytest.raises(OSError, match="symbolic links"):
        store.get("k-planned-evil", f.LANE)


def test_no_temp_files_are_left_and_mode_is_not_world_readable(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    store.append(record())
    (path,) = (tmp_path / f.LANE).iterdir()
    assert path.suffix == ".json"
    assert os.stat(path).st_mode & 0o007 == 0


def test_registered_secrets_are_masked_before_they_reach_disk(tmp_path: Path) -> None:
    canary = "ghs_CANARYauditstore0123456789"
    REDACTOR.register(canary)
    store = FilesystemAuditStore(tmp_path)
    store.append(record(error=f"token {canary} leaked", status="failed"))
    assert canary not in "".join(p.read_text() for p in tmp_path.rglob("*.json"))


def test_latest_is_the_last_written_and_lanes_are_separate(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    store.append(record("planned", key=None))
    last = store.append(record("failed", key=None))
    assert store.latest(f.LANE) == last
    assert store.latest("another-lane") is None
    assert store.get(last.record_id) == last  # found without naming the lane


def test_an_unsafe_lane_never_becomes_a_directory(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    with pytest.raises(AuditConflict):
        store.append(record(lane_name="../escape"))
    assert list(tmp_path.iterdir()) == []
