"""Full-text query helpers shared by memory and documents (FTS5 and tsquery syntax)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORD_TEXT = """a an and are as at be but by did do does for from had has have he her him
his how i if in into is it its me my of on or our she so that the their them then there they
this to was we were what when where which who whom why will with would you your"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def words(text: str) -> list[str]:
    """The lower-case words of ``text`` (as the query side sees them)."""
    return _WORD.findall(text.lower())


OWNED_WORDS_SQL = "mongars_owned_words_v1"


def owned_words(owner: int, text: str) -> str:
    """``text``'s words, each tagged with its owner ("42_word"), for the SQLite
    memory index (migration 0009): each user's words are then terms of their own,
    so a match reads one user's posting lists and BM25 counts one user's memories.

    Registered on every SQLite connection as ``mongars_owned_words_v1`` and called
    by the index's triggers; the index is contentless, so a row is deleted by
    passing the words it was indexed with: changing what this returns needs a new
    function name and a migration that rebuilds the index. The tag is digits and
    an underscore (consonants to the porter stemmer, so it stems as before)."""
    return " ".join(f"{owner}_{w}" for w in _WORD.findall(text))


def query_terms(query: str, limit: int = 24) -> list[str]:
    """Distinct lower-case words of a query, stopwords out (at most ``limit``)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in STOPWORDS and len(seen) < limit:
            seen.setdefault(word, None)
    return list(seen)


def fts_quote(term: str) -> str:
    """One FTS5 string token (so no word is read as an operator)."""
    return '"' + term.replace('"', '""') + '"'


def _pg_quote(term: str) -> str:
    return "'" + term.replace("'", "''").replace("\\", "") + "'"


def pg_tsquery(terms: Sequence[str], join: str = " | ") -> str:
    """A to_tsquery expression: the terms joined by ``join``, longer ones as prefixes."""
    return join.join(f"{_pg_quote(t)}:*" if len(t) > 3 else _pg_quote(t) for t in terms)
