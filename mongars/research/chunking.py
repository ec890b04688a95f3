"""Split an :class:`ExtractedDocument` into overlapping, structure-aware chunks.

Pure and deterministic. The document is first cut into *sections* (Markdown
headings for Markdown and HTML, one section per page for PDFs, the whole file for
text and code), each section into *units* no larger than ``max_tokens``
(paragraphs and whole code fences; over-long ones are split by lines, then
sentences, then words, then characters, so a 1 MB single line is fine), and the
units are packed greedily into chunks. Consecutive chunks of one section share
about ``overlap_tokens`` of trailing text.

Invariant: ``doc.text[chunk.start_char:chunk.end_char] == chunk.text``, except for
the pieces of a code fence too large for one chunk, which are split on line
boundaries and get the fence re-opened/closed around their slice (their offsets
still cover exactly the source lines they hold). A code fence is otherwise never
split, and overlap never takes part of a fence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from mongars.research.extract import ExtractedDocument

TokenCounter = Callable[[str], int]

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_LINES = re.compile(r"\n")
_SENTENCES = re.compile(r"(?<=[.!?;:…])[\"')\]]*\s+|(?<=[。！？；])")
_WORDS = re.compile(r"\s+")
_PROSE_LEVELS = (_BLANK_LINES, _LINES, _SENTENCES)
_CODE_LEVELS = (_BLANK_LINES, _LINES)
_MAX_CHARS_PER_TOKEN = 32  # a span longer than max_tokens * this is too big without counting
_TOP_LEVEL_CODE = re.compile(r"\S")


def estimate_tokens(text: str) -> int:
    """Cheap token estimate: ~4 characters per token, one per CJK character."""
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    return max(1, math.ceil((len(text) - cjk) / 4) + cjk)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage of a document, as stored and embedded.

    ``heading_path`` is the chain of headings the chunk sits under (for code: the
    file name). ``page`` is the 1-based PDF page (None for other formats).
    ``start_char``/``end_char`` index ``ExtractedDocument.text``.
    """

    index: int
    text: str
    start_char: int
    end_char: int
    heading_path: list[str] = field(default_factory=list)
    page: int | None = None
    token_estimate: int = 0

    @property
    def section(self) -> str:
        """The heading path as one string, e.g. ``"Install > Linux"``."""
        return " > ".join(self.heading_path)

    def context_text(self) -> str:
        """Text to embed: the heading path on its own line, a blank line, then the text."""
        return f"{self.section}\n\n{self.text}" if self.heading_path else self.text


UnitKind = Literal["text", "heading", "fence", "fence_piece"]


@dataclass(slots=True)
class _Unit:
    start: int
    end: int
    tokens: int
    kind: UnitKind
    prefix: str = ""
    suffix: str = ""
    opens_block: bool = False  # a paragraph, fence or heading starts here: a good cut


@dataclass(slots=True)
class _Section:
    path: list[str]
    units: list[_Unit]
    page: int | None = None


def chunk_document(
    doc: ExtractedDocument,
    *,
    max_tokens: int = 350,
    overlap_tokens: int = 50,
    count_tokens: TokenCounter | None = None,
) -> list[Chunk]:
    """Chunks of ``doc`` of at most ``max_tokens`` each (as measured by ``count_tokens``)."""
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be >= 0 and smaller than max_tokens")
    count = count_tokens or estimate_tokens
    cutter = _Cutter(doc.text, max_tokens, count)
    chunks: list[Chunk] = []
    for section in _merge_heading_only(cutter.sections(doc)):
        for start, end, prefix, suffix in _pack(section.units, max_tokens, overlap_tokens, cutter):
            text = prefix + doc.text[start:end] + suffix
            chunks.append(
                Chunk(
                    index=len(chunks),
                    text=text,
                    start_char=start,
                    end_char=end,
                    heading_path=list(section.path),
                    page=section.page if section.page is not None else doc.page_at(start),
                    token_estimate=count(text),
                )
            )
    return chunks


class _Cutter:
    """Cuts the document text into sections of size-bounded units."""

    def __init__(self, text: str, max_tokens: int, count: TokenCounter) -> None:
        self.text = text
        self.max_tokens = max_tokens
        self.count = count
        self.tail_patterns: tuple[re.Pattern[str], ...] = (_SENTENCES, _WORDS)

    def sections(self, doc: ExtractedDocument) -> list[_Section]:
        text = self.text
        if doc.format == "pdf" and doc.page_starts:
            ends = [*[s - 2 for s in doc.page_starts[1:]], len(text)]
            return [
                _Section([], self._prose_units(start, end), page=number)
                for number, (start, end) in enumerate(zip(doc.page_starts, ends, strict=True), 1)
            ]
        if doc.format == "code":
            path = [doc.source] if doc.source else []
            self.tail_patterns = (_LINES,)
            return [_Section(path, self._code_units(0, len(text)))]
        return self._markdown_sections(headings=doc.format in ("markdown", "html"))

    # --- prose and Markdown ---------------------------------------------------------

    def _markdown_sections(self, *, headings: bool) -> list[_Section]:
        text = self.text
        stack: list[tuple[int, str]] = []
        sections = [_Section([], [])]
        para_start: int | None = None
        pos = 0
        while pos < len(text):
            line_end = _line_end(text, pos)
            line = text[pos:line_end]
            fence = _FENCE_OPEN.match(line) if "`" in line[:6] or "~" in line[:6] else None
            heading = _HEADING.match(line) if headings and line.lstrip()[:1] == "#" else None
            if (fence or heading or not line.strip()) and para_start is not None:
                sections[-1].units.extend(self._prose_units(para_start, pos))
                para_start = None
            if fence:
                close, closed = _fence_close(text, line_end, fence.group(1))
                sections[-1].units.extend(self._fence_units(pos, close, line, closed=closed))
                pos = close + 1
                continue
            if heading:
                level, title = len(heading.group(1)), (heading.group(2) or "").strip()
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, title))
                sections.append(_Section([t[:200] for _, t in stack if t], []))
                sections[-1].units.extend(self._block(pos, line_end, _PROSE_LEVELS, "heading"))
            elif line.strip() and para_start is None:
                para_start = pos
            pos = line_end + 1
        if para_start is not None:
            sections[-1].units.extend(self._prose_units(para_start, len(text)))
        return [s for s in sections if s.units]

    def _prose_units(self, start: int, end: int) -> list[_Unit]:
        units: list[_Unit] = []
        for s, e in _split_points(self.text, start, end, _BLANK_LINES):
            units.extend(self._block(s, e, _PROSE_LEVELS[1:], "text"))
        return units

    def _code_units(self, start: int, end: int) -> list[_Unit]:
        """Top-level blocks: a new block starts at an unindented line after a blank line."""
        text = self.text
        units: list[_Unit] = []
        block_start = start
        pos, prev_blank = start, False
        while pos < end:
            line_end = _line_end(text, pos)
            blank = not text[pos:line_end].strip()
            if prev_blank and not blank and _TOP_LEVEL_CODE.match(text, pos) and pos > block_start:
                units.extend(self._block(block_start, pos, _CODE_LEVELS, "text"))
                block_start = pos
            prev_blank = blank
            pos = line_end + 1
        units.extend(self._block(block_start, end, _CODE_LEVELS, "text"))
        return units

    # --- fences ------------------------------------------------------------------------

    def _fence_units(self, start: int, end: int, opener: str, *, closed: bool) -> list[_Unit]:
        tokens = self.count(self.text[start:end])
        if tokens <= self.max_tokens:
            return [_Unit(start, end, tokens, "fence", opens_block=True)]
        marker = _FENCE_OPEN.match(opener)
        fence_chars = marker.group(1) if marker else "```"
        open_line = opener.strip() + "\n"
        close_line = "\n" + fence_chars
        overhead = self.count(open_line) + self.count(close_line) + 1
        body_max = max(1, self.max_tokens - overhead)
        body_cutter = _Cutter(self.text, body_max, self.count)
        pieces = _pack_adjacent(body_cutter._bounded(start, end, _CODE_LEVELS, "text"), body_max)
        units = []
        for i, piece in enumerate(pieces):
            first, last = i == 0, i == len(pieces) - 1
            units.append(
                _Unit(
                    piece.start,
                    piece.end,
                    piece.tokens + overhead,
                    "fence_piece",
                    prefix="" if first else open_line,
                    suffix="" if last and closed else close_line,
                    opens_block=True,
                )
            )
        return units

    # --- size-bounded splitting ------------------------------------------------------

    def _block(
        self, start: int, end: int, levels: tuple[re.Pattern[str], ...], kind: UnitKind
    ) -> list[_Unit]:
        """Units of one paragraph, heading or code block; the first one opens the block."""
        units = self._bounded(start, end, levels, kind)
        if units:
            units[0].opens_block = True
        return units

    def _bounded(
        self, start: int, end: int, levels: tuple[re.Pattern[str], ...], kind: UnitKind
    ) -> list[_Unit]:
        """Units covering [start, end) (whitespace-trimmed), each within max_tokens."""
        start, end = _trim(self.text, start, end)
        if start >= end:
            return []
        if end - start <= self.max_tokens * _MAX_CHARS_PER_TOKEN:
            tokens = self.count(self.text[start:end])
            if tokens <= self.max_tokens:
                return [_Unit(start, end, tokens, kind)]
        if not levels:
            return self._window_split(start, end, kind)
        pieces: list[_Unit] = []
        for s, e in _split_points(self.text, start, end, levels[0]):
            pieces.extend(self._bounded(s, e, levels[1:], kind))
        return pieces

    def _window_split(self, start: int, end: int, kind: UnitKind) -> list[_Unit]:
        """Last resort for text without line or sentence breaks: windows cut at spaces."""
        text = self.text
        sample = text[start : min(end, start + 65536)]
        chars_per_token = len(sample) / max(self.count(sample), 1)
        units: list[_Unit] = []
        pos = start
        while pos < end:
            size = max(1, int(self.max_tokens * chars_per_token * 0.9))
            while True:
                cut = min(end, pos + size)
                if cut < end:
                    space = max(text.rfind(" ", pos + size // 2, cut), text.rfind("\t", pos, cut))
                    cut = space + 1 if space > pos else cut
                tokens = self.count(text[pos:cut])
                if tokens <= self.max_tokens or size == 1:
                    break
                size = max(1, int(size * 0.8))
            s, e = _trim(text, pos, cut)
            if s < e:
                units.append(_Unit(s, e, self.count(text[s:e]), kind))
            pos = cut
        return units


# --- packing -------------------------------------------------------------------------


def _pack(
    units: list[_Unit], max_tokens: int, overlap: int, cutter: _Cutter
) -> list[tuple[int, int, str, str]]:
    """(start, end, prefix, suffix) of each chunk of one section."""
    spans: list[tuple[int, int, str, str]] = []
    previous: list[_Unit] = []
    i = 0
    while i < len(units):
        if units[i].kind == "fence_piece":
            unit = units[i]
            spans.append((unit.start, unit.end, unit.prefix, unit.suffix))
            previous, i = [], i + 1
            continue
        start, used = _overlap_start(previous, overlap, cutter)
        if units[i].tokens > max_tokens - used:
            start, used = None, 0
        total, j = used, i
        while j < len(units) and units[j].kind != "fence_piece":
            if total + units[j].tokens > max_tokens:
                break
            total += units[j].tokens
            j += 1
        j = max(j, i + 1)  # a unit is never larger than max_tokens; never loop forever
        j = _prefer_block_cut(units, i, j, max_tokens - used)
        first = units[i].start if start is None else start
        # Unit sizes ignore the whitespace between units: check the real text, then shrink.
        while cutter.count(cutter.text[first : units[j - 1].end]) > max_tokens:
            if j - 1 > i:
                j -= 1
            elif first != units[i].start:
                first = units[i].start
            else:
                break
        spans.append((first, units[j - 1].end, "", ""))
        previous, i = units[i:j], j
    return spans


def _prefer_block_cut(units: list[_Unit], i: int, j: int, budget: int) -> int:
    """Move the cut back to a block start when that still keeps the chunk half full."""
    if j >= len(units) or units[j].opens_block:
        return j
    filled = sum(u.tokens for u in units[i:j])
    for k in range(j - 1, i, -1):
        filled -= units[k].tokens
        if filled < budget // 2:
            break
        if units[k].opens_block:
            return k
    return j


def _overlap_start(previous: list[_Unit], overlap: int, cutter: _Cutter) -> tuple[int | None, int]:
    """Where the next chunk starts to repeat ~``overlap`` tokens of ``previous``, and their size."""
    if not previous or overlap <= 0:
        return None, 0
    used, start = 0, None
    for unit in reversed(previous):
        if used + unit.tokens <= overlap:
            used, start = used + unit.tokens, unit.start
            continue
        if unit.kind == "text":
            tail = _tail(cutter.text, unit, overlap - used, cutter.tail_patterns)
            if tail is not None:
                used, start = used + cutter.count(cutter.text[tail : unit.end]), tail
        break
    if start is None or start <= previous[0].start:
        return None, 0
    return start, used


def _tail(text: str, unit: _Unit, budget: int, patterns: tuple[re.Pattern[str], ...]) -> int | None:
    """Start of a tail of ``unit`` with about ``budget`` tokens, at a sentence or word start."""
    if budget <= 0:
        return None
    chars = int(budget * (unit.end - unit.start) / max(unit.tokens, 1))
    lower = max(unit.start + 1, unit.end - chars)
    window = text[lower : unit.end]
    for pattern in patterns:
        match = pattern.search(window)
        if match and match.end() < len(window):
            return lower + match.end()
    return None


def _pack_adjacent(pieces: list[_Unit], max_tokens: int) -> list[_Unit]:
    packed: list[_Unit] = []
    for piece in pieces:
        last = packed[-1] if packed else None
        if last is not None and last.tokens + piece.tokens <= max_tokens:
            packed[-1] = _Unit(last.start, piece.end, last.tokens + piece.tokens, last.kind)
        else:
            packed.append(piece)
    return packed


def _merge_heading_only(sections: list[_Section]) -> list[_Section]:
    """A section with nothing but its heading joins the next one (no heading-only chunks)."""
    merged: list[_Section] = []
    carry: list[_Unit] = []
    for i, section in enumerate(sections):
        units = carry + section.units
        heading_only = all(u.kind == "heading" for u in units)
        if heading_only and i + 1 < len(sections) and sections[i + 1].page == section.page:
            carry = units
            continue
        merged.append(_Section(section.path, units, section.page))
        carry = []
    return merged


# --- text helpers ----------------------------------------------------------------------


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _fence_close(text: str, pos: int, opener: str) -> tuple[int, bool]:
    """End offset (before its newline) of the fence opened by ``opener``; False if unclosed."""
    if pos >= len(text):
        return len(text), False
    closer = re.compile(rf"^ {{0,3}}{re.escape(opener[0])}{{{len(opener)},}}[ \t]*$", re.M)
    match = closer.search(text, pos + 1)
    return (match.end(), True) if match else (len(text), False)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split_points(
    text: str, start: int, end: int, pattern: re.Pattern[str]
) -> list[tuple[int, int]]:
    """Contiguous spans covering [start, end), cut after each match of ``pattern``."""
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in pattern.finditer(text, start, end):
        if match.end() > cursor and match.end() < end:
            spans.append((cursor, match.end()))
            cursor = match.end()
    spans.append((cursor, end))
    return spans
