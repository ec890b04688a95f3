"""memories: full-text indexes of per-user terms

Each memory's words are indexed tagged with their owner ("42_word"), so a
search reads only its user's posting lists and BM25 counts document
frequencies within that user's memories. SQLite: the previous FTS5 index
tagged rows with an owner column, so every search intersected the owner's
whole posting list (100,000 entries for a large user) and BM25 walked every
matched term's posting list across all users (mongars.db.fulltext.owned_words
tags the words). PostgreSQL: the GIN index on the English tsvector returned
every user's matches; ``search_words`` holds the same lexemes tagged (by the
SQL functions below) and the untagged column goes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 12:00:00
"""

from collections.abc import Sequence

from alembic import op

from mongars.db.fulltext import OWNED_WORDS_SQL

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = ("memories_fts_ai", "memories_fts_ad", "memories_fts_au")
WORDS = f"{OWNED_WORDS_SQL}({{0}}.user_id, {{0}}.text)"

# PostgreSQL: a text's English lexemes tagged with their owner, positions kept (so
# phrase queries, which to_tsquery makes of words like snake_case, still match), and
# a tsquery's ('run':* | 'yoga' -> '42_run':* | '42_yoga'). The pattern takes each
# quoted lexeme of the text form (a quote inside one is doubled).
_TAG = (
    "regexp_replace(CAST({} AS text), '''((?:[^'']|'''')+)''', "
    r"'''' || owner::text || '_\1''', 'g')"
)
OWNED_TSVECTOR = (
    "CREATE FUNCTION mongars_owned_tsvector(owner integer, body text) RETURNS tsvector "
    "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN CAST("
    + _TAG.format("to_tsvector('english'::regconfig, body)")
    + " AS tsvector)"
)
OWNED_TSQUERY = (
    "CREATE FUNCTION mongars_owned_tsquery(owner integer, query tsquery) RETURNS tsquery "
    "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN CAST("
    + _TAG.format("query")
    + " AS tsquery)"
)


def _postgres_upgrade() -> None:
    op.execute(OWNED_TSVECTOR)
    op.execute(OWNED_TSQUERY)
    op.execute("DROP INDEX IF EXISTS search_memories_fts_gin")
    op.execute("ALTER TABLE memories DROP COLUMN search_vector")
    op.execute(
        "ALTER TABLE memories ADD COLUMN search_words tsvector "
        "GENERATED ALWAYS AS (mongars_owned_tsvector(user_id, text)) STORED"
    )
    op.execute("CREATE INDEX search_memories_words_gin ON memories USING gin (search_words)")
    op.execute("ANALYZE memories")  # the lexeme statistics recall reads


def _postgres_downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS search_memories_words_gin")
    op.execute("ALTER TABLE memories DROP COLUMN search_words")
    op.execute("DROP FUNCTION mongars_owned_tsquery(integer, tsquery)")
    op.execute("DROP FUNCTION mongars_owned_tsvector(integer, text)")
    op.execute(
        "ALTER TABLE memories ADD COLUMN search_vector tsvector "
        "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
    )
    op.execute("CREATE INDEX search_memories_fts_gin ON memories USING gin (search_vector)")


def _drop() -> None:
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS memories_fts")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _postgres_upgrade()
    if dialect != "sqlite":
        return
    _drop()
    # Contentless: what is indexed is not the memories' text, so FTS5 must never
    # read it back (a delete passes the words that were indexed).
    op.execute(
        "CREATE VIRTUAL TABLE memories_fts USING fts5(text, content='', "
        "tokenize=\"porter unicode61 remove_diacritics 2 tokenchars '_'\")"
    )
    new, old = WORDS.format("new"), WORDS.format("old")
    insert = f"INSERT INTO memories_fts(rowid, text) VALUES (new.id, {new});"
    delete = (
        f"INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.id, {old});"
    )
    op.execute(f"CREATE TRIGGER memories_fts_ai AFTER INSERT ON memories BEGIN {insert} END")
    op.execute(f"CREATE TRIGGER memories_fts_ad AFTER DELETE ON memories BEGIN {delete} END")
    op.execute(
        "CREATE TRIGGER memories_fts_au AFTER UPDATE OF text, user_id ON memories "
        f"BEGIN {delete} {insert} END"
    )
    op.execute(
        f"INSERT INTO memories_fts(rowid, text) SELECT id, {WORDS.format('memories')} FROM memories"
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _postgres_downgrade()
    if dialect != "sqlite":
        return
    _drop()
    # the index of migration 0005
    op.execute(
        "CREATE VIRTUAL TABLE memories_fts USING fts5(text, owner, content='memories', "
        "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')"
    )
    owner = "'u' || {0}.user_id"
    op.execute(
        "CREATE TRIGGER memories_fts_ai AFTER INSERT ON memories BEGIN "
        "INSERT INTO memories_fts(rowid, text, owner) "
        f"VALUES (new.id, new.text, {owner.format('new')}); END"
    )
    op.execute(
        "CREATE TRIGGER memories_fts_ad AFTER DELETE ON memories BEGIN "
        "INSERT INTO memories_fts(memories_fts, rowid, text, owner) "
        f"VALUES ('delete', old.id, old.text, {owner.format('old')}); END"
    )
    op.execute(
        "CREATE TRIGGER memories_fts_au AFTER UPDATE OF text ON memories BEGIN "
        "INSERT INTO memories_fts(memories_fts, rowid, text, owner) "
        f"VALUES ('delete', old.id, old.text, {owner.format('old')}); "
        "INSERT INTO memories_fts(rowid, text, owner) "
        f"VALUES (new.id, new.text, {owner.format('new')}); END"
    )
    op.execute(
        "INSERT INTO memories_fts(rowid, text, owner) SELECT id, text, 'u' || user_id FROM memories"
    )
