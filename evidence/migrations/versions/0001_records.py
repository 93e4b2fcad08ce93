"""Append-only records keyed by record id, unique idempotency key, and the per-lane state."""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

CLASSES = ("latest", "terminal", "completed", "failed")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE evidence_records (
            record_id        text COLLATE "C" PRIMARY KEY,
            idempotency_key  text NOT NULL UNIQUE,
            digest           text NOT NULL,
            host             text COLLATE "C" NOT NULL,
            repository       text NOT NULL,
            lane             text COLLATE "C" NOT NULL,
            status           text NOT NULL
                             CHECK (status IN ('planned', 'completed', 'removed', 'failed')),
            failed_gate      text,
            created_at       timestamptz NOT NULL,
            stored_at        timestamptz NOT NULL,
            token_id         text NOT NULL,
            record           jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX evidence_records_time ON evidence_records (created_at, record_id)")
    for column in ("host", "lane", "repository", "status"):
        op.execute(
            f"CREATE INDEX evidence_records_{column} "
            f"ON evidence_records ({column}, created_at, record_id)"
        )
    op.execute(
        """
        CREATE FUNCTION evidence_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'evidence_records is append-only';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER evidence_records_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON evidence_records FOR EACH STATEMENT EXECUTE FUNCTION evidence_records_append_only()"
    )
    pointers = ",\n".join(
        f'{c}_id text COLLATE "C", {c}_at timestamptz, {c}_status text, {c}_gate text'
        for c in CLASSES
    )
    op.execute(
        f"""
        CREATE TABLE evidence_lanes (
            host text COLLATE "C" NOT NULL,
            lane text COLLATE "C" NOT NULL,
            repository text NOT NULL,
            {pointers},
            PRIMARY KEY (host, lane)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE evidence_lanes")
    op.execute("DROP TABLE evidence_records")
    op.execute("DROP FUNCTION evidence_records_append_only()")
