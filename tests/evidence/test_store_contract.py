"""The store contract, run unchanged against the filesystem store and PostgreSQL."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta

from agent.contracts import RunnerLaneMaintainerAuditRecord
from evidence.store import RecordQuery, StoredRecord
from tests.evidence import factories as ef
from tests.evidence.conftest import StoreUnderTest


def stored(rec: RunnerLaneMaintainerAuditRecord, token_id: str = "t1") -> StoredRecord:  # noqa: S107
    digest = hashlib.sha256(rec.model_dump_json().encode()).hexdigest()
    return StoredRecord(rec, digest, ef.minutes(1), token_id)


def test_put_then_replay_then_conflict(sut: StoreUnderTest) -> None:
    rec = ef.record("planned")
    first = sut.store.put(stored(rec))
    assert first.outcome == "created"
    assert sut.store.get(rec.record_id) == first.stored
    again = sut.store.put(stored(rec, token_id="t2"))
    assert again.outcome == "replay"
    assert again.stored.token_id == "t1"  # the stored one, not the replayed one
    changed = rec.model_copy(update={"error": "changed"})
    conflict = sut.store.put(stored(changed))
    assert conflict.outcome == "conflict"
    assert conflict.stored.record == rec
    assert sut.store.count() == 1


def test_get_of_an_unknown_or_hostile_id_is_none(sut: StoreUnderTest) -> None:
    sut.store.put(stored(ef.record()))
    for bad in ("nope", "../../etc/passwd", "/abs", "a\x00b"[:1], "x" * 300):
        assert sut.store.get(bad) is None


def _fleet() -> list[RunnerLaneMaintainerAuditRecord]:
    out = []
    for h, host in enumerate(("chris-testing", "build-02", "build-03")):
        for lane in ("lane-a", "lane-b"):
            for i, status in enumerate(("planned", "completed", "planned", "failed")):
                out.append(
                    ef.record(
                        status,
                        host=host,
                        lane=lane,
                        repository=ef.REPO if h < 2 else "owner/other",
                        at=ef.minutes(10 * i + h),
                    )
                )
    return out


def test_queries_filter_and_paginate_newest_first(sut: StoreUnderTest) -> None:
    records = _fleet()
    for rec in records:
        sut.store.put(stored(rec))
    assert sut.store.count() == len(records)
    assert {s.record_id for s in sut.store.query(RecordQuery(host="build-02", limit=500))} == {
        r.record_id for r in records if r.desired.host_name == "build-02"
    }
    assert len(sut.store.query(RecordQuery(repository="owner/other", limit=500))) == 8
    assert len(sut.store.query(RecordQuery(lane="lane-a", status="completed"))) == 3
    window = sut.store.query(RecordQuery(since=ef.minutes(10), until=ef.minutes(20)))
    assert {s.record.status for s in window} == {"completed"}
    assert len(window) == 6
    seen: list[str] = []
    after = None
    while True:
        page = sut.store.query(RecordQuery(after=after, limit=5))
        seen += [s.record_id for s in page]
        if len(page) < 5:
            break
        after = page[-1].sort_key
    assert len(seen) == len(set(seen)) == len(records)
    ordered = sorted(records, key=lambda r: (r.created_at, r.record_id), reverse=True)
    assert seen == [r.record_id for r in ordered]


def test_lane_state_does_not_depend_on_arrival_order(sut: StoreUnderTest, tmp_path: object) -> None:
    records = _fleet()
    random.Random(7).shuffle(records)
    for rec in records:
        sut.store.put(stored(rec))
    lanes = sut.store.lanes()
    assert [(s.host, s.lane) for s in lanes] == sorted((s.host, s.lane) for s in lanes)
    assert len(lanes) == 6
    for state in lanes:
        assert state.latest.status == "failed"
        assert state.terminal == state.failed == state.latest
        assert state.failed is not None
        assert state.failed.failed_gate == "github_exactly_one_online"
        assert state.completed is not None
        assert state.completed.status == "completed"
    assert [s.host for s in sut.store.lanes("build-02")] == ["build-02", "build-02"]


def test_a_later_completed_makes_the_lane_proven_and_planned_changes_nothing(
    sut: StoreUnderTest,
) -> None:
    sut.store.put(stored(ef.record("failed", at=ef.minutes(1))))
    sut.store.put(stored(ef.record("completed", at=ef.minutes(2))))
    sut.store.put(stored(ef.record("planned", at=ef.minutes(3))))
    (state,) = sut.store.lanes()
    assert state.latest.status == "planned"
    assert state.terminal is not None
    assert state.terminal.status == "completed"
    assert state.completed is not None
    assert state.completed.created_at == ef.minutes(2)
    assert state.failed is not None
    assert state.failed.created_at == ef.minutes(1)
    assert state.latest.created_at - state.failed.created_at == timedelta(minutes=2)


def test_records_read_back_equal_what_was_stored(sut: StoreUnderTest) -> None:
    rec = ef.record("completed", provider_evidence={"runner": {"id": 7}, "expires_at": "x"})
    sut.store.put(stored(rec))
    (page,) = sut.store.query(RecordQuery())
    assert page.record == rec
    assert page.digest == stored(rec).digest
    assert page.stored_at == ef.minutes(1)


def test_lanes_come_in_pages_by_host_and_lane(sut: StoreUnderTest) -> None:
    for rec in _fleet():
        sut.store.put(stored(rec))
    seen: list[tuple[str, str]] = []
    after = None
    while True:
        page = sut.store.lanes(after=after, limit=4)
        seen += [(s.host, s.lane) for s in page]
        if len(page) < 4:
            break
        after = (page[-1].host, page[-1].lane)
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 6
    assert [s.lane for s in sut.store.lanes("build-02", ("build-02", "lane-a"))] == ["lane-b"]
