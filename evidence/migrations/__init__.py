"""Alembic migrations of the PostgreSQL store (versions/ in order)."""
