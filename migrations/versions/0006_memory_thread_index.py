"""memories: (user_id, thread_id, id) index for the turns next to a recalled one

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain CREATE INDEX (no batch table copy, which would drop the FTS5 triggers).
    op.create_index("ix_memories_user_thread", "memories", ["user_id", "thread_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_memories_user_thread", table_name="memories")
