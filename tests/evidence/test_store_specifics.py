"""What only one store has to show: the filesystem store's names and crash leftovers, and
PostgreSQL's migrations and append-only table."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import psycopg
import pytest
from alembic import command

from agent.contracts import RunnerLaneMaintainerAuditRecord
from evidence.fs_store import FilesystemEvidenceStore, file_name
from evidence.pg_store import PostgresEvidenceStore, alembic_config, migrate
from evidence.store import StoredRecord
from tests.evidence import factories as ef
from tests.evidence.postgres import Cluster


def _stored(rec: RunnerLaneMaintainerAuditRecord) -> StoredRecord:
    digest = hashlib.sha256(rec.model_dump_json().encode()).hexdigest()
    return StoredRecord(rec, digest, ef.NOW, "t1")


@pytest.mark.parametrize("key", ["../../escape", "/etc/passwd", "a/b", ".hidden", "x" * 400])
def test_fs_names_are_hashes_inside_the_store(tmp_path: Path, key: str) -> None:
    store = FilesystemEvidenceStore(tmp_path / "store")
    assert store.put(_stored(ef.record(record_id=key))).outcome == "created"
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"]
    assert [p.relative_to(tmp_path).parts for p in files] == [("store", "records", file_name(key))]
    assert store.get(key) is not None


def test_fs_a_crash_mid_write_leaves_nothing_half_stored(tmp_path: Path) -> None:
    """write_atomic writes a dot-temp file, fsyncs, renames: a crash before the rename leaves
    only the temp file, which is never read as a record and does not block the retry."""
    store = FilesystemEvidenceStore(tmp_path / "store")
    rec = ef.record("completed")
    name = file_name(rec.record_id)
    leftover = tmp_path / "store" / "records" / f".{name}.deadbeef.tmp"
    leftover.write_bytes(b'{"half": ')
    assert store.count() == 0
    assert store.get(rec.record_id) is None
    assert store.put(_stored(rec)).outcome == "created"
    assert FilesystemEvidenceStore(tmp_path / "store").get(rec.record_id) == _stored(rec)


def test_fs_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    store = FilesystemEvidenceStore(tmp_path / "store")
    rec = ef.record()
    target = tmp_path / "outside.json"
    target.write_text("{}")
    os.symlink(target, tmp_path / "store" / "records" / file_name(rec.record_id))
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        store.put(_stored(rec))
    assert target.read_text() == "{}"


def test_pg_migrations_go_down_and_up_and_the_table_is_append_only(pg_cluster: Cluster) -> None:
    dsn = pg_cluster.create_database("evidence_migrations")
    migrate(dsn)
    command.downgrade(alembic_config(dsn), "base")
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
    store = PostgresEvidenceStore(dsn)
    try:
        store.put(_stored(ef.record()))
    finally:
        store.close()
    for sql in (
        "UPDATE evidence_records SET status = 'completed'",
        "DELETE FROM evidence_records",
        "TRUNCATE evidence_records",
    ):
        with (
            psycopg.connect(dsn, autocommit=True) as conn,
            pytest.raises(psycopg.errors.RaiseException, match="append-only"),
        ):
            conn.execute(sql.encode())
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM evidence_records").fetchone() == (1,)
