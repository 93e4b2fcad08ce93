"""The migration scripts, one per schema version."""
