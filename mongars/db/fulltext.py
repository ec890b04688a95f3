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
