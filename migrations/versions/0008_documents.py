"""documents: collections, documents, chunks (full-text + vector search), knowledge gaps,
and the citations of a turn

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mongars.db.base
import mongars.memory.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = mongars.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "doc_collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"],
                                name=op.f("fk_doc_collections_owner_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doc_collections")),
        sa.UniqueConstraint("scope", "name", name="uq_doc_collections_scope_name"),
    )
    op.create_index(op.f("ix_doc_collections_scope"), "doc_collections", ["scope"])
    op.create_index(op.f("ix_doc_collections_owner_id"), "doc_collections", ["owner_id"])
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["doc_collections.id"],
                                name=op.f("fk_documents_collection_id_doc_collections"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["uploaded_by"], ["users.id"],
                                name=op.f("fk_documents_uploaded_by_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("collection_id", "path", name="uq_documents_collection_path"),
    )
    op.create_index(op.f("ix_documents_collection_id"), "documents", ["collection_id"])
    op.create_table(
        "doc_chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("section", sa.Text(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("start_char", sa.Integer(), nullable=False),
        sa.Column("end_char", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embedding", mongars.memory.models.Embedding(), nullable=True),
        sa.ForeignKeyConstraint(["collection_id"], ["doc_collections.id"],
                                name=op.f("fk_doc_chunks_collection_id_doc_collections"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name=op.f("fk_doc_chunks_document_id_documents"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doc_chunks")),
    )
    op.create_index("ix_doc_chunks_document_position", "doc_chunks", ["document_id", "position"])
    op.create_index(op.f("ix_doc_chunks_collection_id"), "doc_chunks", ["collection_id"])
    op.create_table(
        "knowledge_gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("missing_terms", sa.JSON(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("best_score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_knowledge_gaps_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_gaps")),
    )
    op.create_index("ix_knowledge_gaps_user_created", "knowledge_gaps", ["user_id", "created_at"])
    # A plain ADD COLUMN (no batch copy of turns); existing turns cited nothing.
    op.add_column(
        "turns", sa.Column("citations", sa.JSON(), nullable=False, server_default="[]")
    )
    if dialect == "sqlite":
        # External-content FTS5 over chunk text; 'coll' tags each row with its
        # collection so a MATCH restricts itself to the collections searched.
        op.execute(
            "CREATE VIRTUAL TABLE search_chunks_fts USING fts5(text, coll, content='doc_chunks', "
            "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER search_chunks_ai AFTER INSERT ON doc_chunks BEGIN "
            "INSERT INTO search_chunks_fts(rowid, text, coll) "
            "VALUES (new.id, new.text, 'c' || new.collection_id); END"
        )
        op.execute(
            "CREATE TRIGGER search_chunks_ad AFTER DELETE ON doc_chunks BEGIN "
            "INSERT INTO search_chunks_fts(search_chunks_fts, rowid, text, coll) "
            "VALUES ('delete', old.id, old.text, 'c' || old.collection_id); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE doc_chunks ADD COLUMN search_vector tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
        )
        op.execute("CREATE INDEX search_doc_chunks_fts_gin ON doc_chunks USING gin (search_vector)")
        op.execute(
            "CREATE INDEX search_doc_chunks_embedding_hnsw ON doc_chunks "
            "USING hnsw (embedding vector_cosine_ops)"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("search_chunks_ai", "search_chunks_ad"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_chunks_fts")
    with op.batch_alter_table("turns") as batch_op:
        batch_op.drop_column("citations")
    op.drop_table("knowledge_gaps")
    op.drop_table("doc_chunks")
    op.drop_table("documents")
    op.drop_table("doc_collections")
