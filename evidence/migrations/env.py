"""Alembic environment: online migrations over one psycopg 3 connection from a libpq DSN."""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
dsn: str = config.attributes["dsn"]


def _connect() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn)


engine = create_engine("postgresql+psycopg://", creator=_connect, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
