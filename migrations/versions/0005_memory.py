"""memories: episodic turns, facts and summaries, with full-text and vector search

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mongars.db.base
import mongars.memory.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "memories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("thread_id", sa.String(length=128), nullable=True),
        sa.Column("turn_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", mongars.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mongars.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("embedded", sa.Boolean(), nullable=False),
        sa.Column("embedding", mongars.memory.models.Embedding(), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("valid_from", mongars.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("invalid_at", mongars.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("source_ids", sa.JSON(), nullable=False),
        sa.Column("facts_status", sa.String(length=16), nullable=True),
        sa.Column("facts_error", sa.Text(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["turn_id"], ["turns.id"], name=op.f("fk_memories_turn_id_turns"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_memories_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memories")),
        sa.UniqueConstraint("turn_id", name=op.f("uq_memories_turn_id")),
    )
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.create_index("ix_memories_user_created", ["user_id", "created_at"], unique=False)
        batch_op.create_index("ix_memories_user_pending", ["user_id", "embedded"], unique=False)
        batch_op.create_index(op.f("ix_memories_facts_status"), ["facts_status"], unique=False)
    op.create_table(
        "memory_epochs",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("reset_epoch", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_memory_epochs_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_memory_epochs")),
    )
    op.create_table(
        "forgotten_turns",
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["turn_id"], ["turns.id"],
                                name=op.f("fk_forgotten_turns_turn_id_turns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_forgotten_turns_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("turn_id", name=op.f("pk_forgotten_turns")),
    )
    with op.batch_alter_table("forgotten_turns", schema=None) as batch_op:
        batch_op.create_index(op.f("ix_forgotten_turns_user_id"), ["user_id"], unique=False)
    if dialect == "sqlite":
        # External-content FTS5 index kept in sync by triggers; the owner tag lets
        # a MATCH restrict itself to one user's rows.
        op.execute(
            "CREATE VIRTUAL TABLE memories_fts USING fts5(text, owner, content='memories', "
            "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER memories_fts_ai AFTER INSERT ON memories BEGIN "
            "INSERT INTO memories_fts(rowid, text, owner) VALUES (new.id, new.text, 'u' || new.user_id); END"
        )
        op.execute(
            "CREATE TRIGGER memories_fts_ad AFTER DELETE ON memories BEGIN "
            "INSERT INTO memories_fts(memories_fts, rowid, text, owner) "
            "VALUES ('delete', old.id, old.text, 'u' || old.user_id); END"
        )
        op.execute(
            "CREATE TRIGGER memories_fts_au AFTER UPDATE OF text ON memories BEGIN "
            "INSERT INTO memories_fts(memories_fts, rowid, text, owner) "
            "VALUES ('delete', old.id, old.text, 'u' || old.user_id); "
            "INSERT INTO memories_fts(rowid, text, owner) VALUES (new.id, new.text, 'u' || new.user_id); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE memories ADD COLUMN search_vector tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
        )
        op.execute("CREATE INDEX search_memories_fts_gin ON memories USING gin (search_vector)")
        op.execute(
            "CREATE INDEX search_memories_embedding_hnsw ON memories "
            "USING hnsw (embedding vector_cosine_ops)"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("memories_fts_ai", "memories_fts_ad", "memories_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS memories_fts")
    op.drop_table("forgotten_turns")
    op.drop_table("memory_epochs")
    op.drop_table("memories")
