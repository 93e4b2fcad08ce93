"""The PostgreSQL store (a fleet): schema by Alembic, a psycopg 3 connection pool, one
transaction per post that makes the idempotency decision and the lane state exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from psycopg_pool import ConnectionPool

from agent.contracts import RunnerLaneMaintainerAuditRecord
from evidence.lanestate import CLASSES, classes_of, failed_gate_of
from evidence.store import LaneState, Pointer, PutResult, RecordQuery, StoredRecord

MIGRATIONS = Path(__file__).with_name("migrations")
_COLUMNS = "digest, stored_at, token_id, record::text"


def alembic_config(dsn: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["dsn"] = dsn
    return config


def migrate(dsn: str, revision: str = "head") -> None:
    """Bring the schema to `revision` with Alembic (the only way the schema changes)."""
    command.upgrade(alembic_config(dsn), revision)


def _lane_upsert() -> str:
    cols = [f"{c}_{f}" for c in CLASSES for f in ("id", "at", "status", "gate")]
    values = [f"%({col})s" for col in cols]
    sets = []
    for c in CLASSES:
        newer = (
            f"(EXCLUDED.{c}_at IS NOT NULL AND (l.{c}_at IS NULL OR "
            f"(EXCLUDED.{c}_at, EXCLUDED.{c}_id) > (l.{c}_at, l.{c}_id)))"
        )
        sets += [
            f"{c}_{f} = CASE WHEN {newer} THEN EXCLUDED.{c}_{f} ELSE l.{c}_{f} END"
            for f in ("id", "at", "status", "gate")
        ]
        if c == "latest":
            sets.append(
                f"repository = CASE WHEN {newer} THEN EXCLUDED.repository ELSE l.repository END"
            )
    return (
        f"INSERT INTO evidence_lanes AS l (host, lane, repository, {', '.join(cols)}) "  # noqa: S608
        f"VALUES (%(host)s, %(lane)s, %(repository)s, {', '.join(values)}) "
        f"ON CONFLICT (host, lane) DO UPDATE SET {', '.join(sets)}"
    )


LANE_UPSERT = _lane_upsert()
INSERT = (
    "INSERT INTO evidence_records (record_id, idempotency_key, digest, host, repository, lane,"
    " status, failed_gate, created_at, stored_at, token_id, record) VALUES (%(record_id)s,"
    " %(record_id)s, %(digest)s, %(host)s, %(repository)s, %(lane)s, %(status)s, %(gate)s,"
    " %(created_at)s, %(stored_at)s, %(token_id)s, %(record)s::jsonb)"
    " ON CONFLICT DO NOTHING RETURNING record_id"
)


def _row_to_stored(row: tuple[Any, ...]) -> StoredRecord:
    digest, stored_at, token_id, body = row
    record = RunnerLaneMaintainerAuditRecord.model_validate_json(body)
    return StoredRecord(record=record, digest=digest, stored_at=stored_at, token_id=token_id)


def _pointer(row: tuple[Any, ...]) -> Pointer | None:
    record_id, at, status, gate = row
    return None if record_id is None else Pointer(record_id, at, status, gate)


class PostgresEvidenceStore:
    """Records in `evidence_records` (append-only, enforced by a trigger); lane state in
    `evidence_lanes`, updated in the same transaction as the insert."""

    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 8) -> None:
        self.pool = ConnectionPool(dsn, min_size=min_size, max_size=max_size, open=True)

    def put(self, stored: StoredRecord) -> PutResult:
        record = stored.record
        params: dict[str, Any] = {
            "record_id": record.record_id,
            "digest": stored.digest,
            "host": stored.host,
            "repository": stored.repository,
            "lane": stored.lane,
            "status": record.status,
            "gate": failed_gate_of(stored),
            "created_at": record.created_at,
            "stored_at": stored.stored_at,
            "token_id": stored.token_id,
            "record": record.model_dump_json(),
        }
        with self.pool.connection() as conn, conn.transaction():
            inserted = conn.execute(INSERT, params).fetchone()
            if inserted is None:  # the key exists (a concurrent insert has committed by now)
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM evidence_records WHERE idempotency_key = %s",  # noqa: S608
                    (record.record_id,),
                ).fetchone()
                if row is None:
                    raise RuntimeError("a conflicting key that cannot be read back")
                existing = _row_to_stored(row)
                same = existing.digest == stored.digest
                return PutResult("replay" if same else "conflict", existing)
            owned = classes_of(record.status)
            for c in CLASSES:
                mine = c in owned
                params[f"{c}_id"] = record.record_id if mine else None
                params[f"{c}_at"] = record.created_at if mine else None
                params[f"{c}_status"] = record.status if mine else None
                params[f"{c}_gate"] = params["gate"] if mine else None
            conn.execute(LANE_UPSERT, params)
        return PutResult("created", stored)

    def get(self, record_id: str) -> StoredRecord | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM evidence_records WHERE record_id = %s",  # noqa: S608
                (record_id,),
            ).fetchone()
        return None if row is None else _row_to_stored(row)

    def query(self, query: RecordQuery) -> list[StoredRecord]:
        where: list[str] = []
        args: list[Any] = []
        for column in ("lane", "host", "repository", "status"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        if query.since is not None:
            where.append("created_at >= %s")
            args.append(query.since)
        if query.until is not None:
            where.append("created_at < %s")
            args.append(query.until)
        if query.after is not None:
            where.append("(created_at, record_id) < (%s, %s)")
            args += list(query.after)
        sql = f"SELECT {_COLUMNS} FROM evidence_records"  # noqa: S608 - constant columns
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, record_id DESC LIMIT %s"
        with self.pool.connection() as conn:
            rows = conn.execute(sql, [*args, query.limit]).fetchall()
        return [_row_to_stored(row) for row in rows]

    def lanes(
        self,
        host: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[LaneState]:
        cols = ", ".join(f"{c}_{f}" for c in CLASSES for f in ("id", "at", "status", "gate"))
        where: list[str] = []
        args: list[Any] = []
        if host is not None:
            where.append("host = %s")
            args.append(host)
        if after is not None:
            where.append("(host, lane) > (%s, %s)")
            args += list(after)
        sql = f"SELECT host, lane, repository, {cols} FROM evidence_lanes"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY host, lane"
        if limit is not None:
            sql += " LIMIT %s"
            args.append(limit)
        with self.pool.connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        out = []
        for row in rows:
            latest, terminal, completed, failed = (
                _pointer(row[3 + 4 * i : 7 + 4 * i]) for i in range(4)
            )
            if latest is None:
                raise RuntimeError(f"lane {row[1]} on {row[0]} has no latest record")
            out.append(LaneState(row[0], row[1], row[2], latest, terminal, completed, failed))
        return out

    def count(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM evidence_records").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.pool.close()
