"""${message}"""

from __future__ import annotations

from alembic import op

revision = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else 'op.execute("SELECT 1")  # write the change here'}


def downgrade() -> None:
    ${downgrades if downgrades else 'op.execute("SELECT 1")  # and how to undo it'}
