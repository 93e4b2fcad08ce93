"""The filesystem audit store is append-only, idempotent per key and traversal-proof."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from agent.audit_store import FilesystemAuditStore, key_index_name, record_id_for
from agent.contracts import PlanPolicy, RunnerLaneMaintainerAuditRecord
from agent.errors import AuditConflict, AuditNotFound, AuditStoreError
from agent.planner import plan
from helper.contract.redact import REDACTOR
from tests.planner import factories as f


def record(
    status: str = "planned", key: str | None = "key-1", **changes: Any
) -> RunnerLaneMaintainerAuditRecord:
    result = plan(f.declared(), f.desired(), f.absent(), PlanPolicy(), f.NOW)
    fields: dict[str, Any] = {
        "record_id": record_id_for(status, f.NOW),
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
    written = sorted(p.relative_to(tmp_path / f.LANE) for p in (tmp_path / f.LANE).rglob("*"))
    (record_file,) = [p for p in written if p.suffix == ".json"]
    assert [p.parts[0] for p in written if p != record_file] == [".keys", ".keys"]  # dir, entry
    for path in (tmp_path / f.LANE).rglob("*"):
        assert os.stat(path).st_mode & 0o007 == 0
        assert not path.name.startswith(".tmp")


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


def test_a_corrupt_record_is_quarantined_and_the_newest_valid_one_still_answers(
    tmp_path: Path,
) -> None:
    store = FilesystemAuditStore(tmp_path)
    good = store.append(record("planned"))
    broken = tmp_path / f.LANE / "k-failed-0000.json"
    broken.write_text("{not json")
    os.utime(broken, ns=(2**62, 2**62))  # the newest file on disk
    assert store.latest(f.LANE) == good
    assert [r.record_id for r in store.records(f.LANE)] == [good.record_id]
    assert not broken.exists()
    assert (tmp_path / ".quarantine" / f.LANE / broken.name).read_text() == "{not json"
    assert store.latest_completed(f.LANE) is None


def test_latest_completed_is_the_last_proof_not_the_last_record(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    store.append(record("planned", key="a"))
    assert store.latest_completed(f.LANE) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_store_that_cannot_be_written_says_where_and_leaves_nothing(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    store.append(record("planned", key="a"))
    (tmp_path / f.LANE).chmod(0o500)
    try:
        with pytest.raises(AuditStoreError) as caught:
            store.append(record("failed", key="b"))
    finally:
        (tmp_path / f.LANE).chmod(0o750)
    assert str(tmp_path / f.LANE) in str(caught.value)
    assert "EACCES" in str(caught.value)
    assert [p.name for p in (tmp_path / f.LANE).iterdir() if p.name.startswith(".tmp")] == []


def test_a_full_store_says_where_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on the write (the one fault a test cannot make real without a tiny file system)."""
    store = FilesystemAuditStore(tmp_path)
    real_fsync = os.fsync

    def full(fd: int) -> None:
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".tmp-"):
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(AuditStoreError) as caught:
        store.append(record("failed", key="b"))
    assert "ENOSPC" in str(caught.value)
    assert str(tmp_path / f.LANE) in str(caught.value)
    assert list((tmp_path / f.LANE).iterdir()) == []


def test_keyed_records_get_unique_ids_and_the_key_names_them_through_the_index(
    tmp_path: Path,
) -> None:
    """Ids never derive from keys: the same key in two lanes' histories (or after a history is
    lost) names two different records; the key finds its record through `.keys/`."""
    store = FilesystemAuditStore(tmp_path)
    first = store.append(record("planned", key="same"))
    shutil.rmtree(tmp_path / f.LANE)  # the lane's history is lost
    second = store.append(record("planned", key="same"))
    assert second.record_id != first.record_id
    assert store.by_key(f.LANE, "same", "planned") == second
    assert store.by_key(f.LANE, "same", "failed") is None
    assert store.by_key(f.LANE, "other", "planned") is None
    index = tmp_path / f.LANE / ".keys" / key_index_name(f.LANE, "same", "planned")
    assert index.read_text() == second.record_id


def test_the_same_key_returns_the_stored_record_without_a_second_write(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    first = store.append(record("failed", key="k"))
    again = store.append(record("failed", key="k"))
    assert again == first
    assert len(list((tmp_path / f.LANE).glob("*.json"))) == 1


def test_a_store_written_before_the_index_still_answers_its_keys(tmp_path: Path) -> None:
    """Old stores named a keyed record by its key digest and had no index: such a record is
    still the key's record, and the same key writes nothing new."""
    store = FilesystemAuditStore(tmp_path)
    legacy_id = key_index_name(f.LANE, "old-key", "planned")
    old = record("planned", key="old-key", record_id=legacy_id)
    (tmp_path / f.LANE).mkdir(parents=True)
    (tmp_path / f.LANE / f"{legacy_id}.json").write_text(old.model_dump_json())
    assert store.by_key(f.LANE, "old-key", "planned") == old
    again = store.append(record("planned", key="old-key"))
    assert again == old
    assert [p.name for p in (tmp_path / f.LANE).glob("*.json")] == [f"{legacy_id}.json"]
    with pytest.raises(AuditConflict, match=legacy_id):
        store.append(record("planned", key="old-key", desired=f.desired(apply=True)))


def test_an_index_entry_whose_record_was_quarantined_is_taken_over(tmp_path: Path) -> None:
    store = FilesystemAuditStore(tmp_path)
    first = store.append(record("planned", key="k"))
    (tmp_path / f.LANE / f"{first.record_id}.json").write_text("{not json")
    assert store.latest(f.LANE) is None  # quarantined
    second = store.append(record("planned", key="k"))
    assert second.record_id != first.record_id
    assert store.by_key(f.LANE, "k", "planned") == second


def test_a_writer_that_loses_the_race_for_a_key_leaves_no_second_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer indexes the same key between this writer's look-up and its index: the
    record it wrote is taken back and the winner's is the answer."""
    store = FilesystemAuditStore(tmp_path)
    winner = store.append(record("planned", key="k"))
    real = store.by_key
    calls: list[str] = []

    def first_miss(lane: str, key: str, status: str) -> RunnerLaneMaintainerAuditRecord | None:
        calls.append(key)
        return None if len(calls) == 1 else real(lane, key, status)

    monkeypatch.setattr(store, "by_key", first_miss)
    assert store.append(record("planned", key="k")) == winner
    assert [p.stem for p in (tmp_path / f.LANE).glob("*.json")] == [winner.record_id]
