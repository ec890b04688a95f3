"""Text extraction for document ingestion: bytes in, plain text (or Markdown) out.

Pure functions: no database, no network, no global state. :func:`extract` detects
the format by content first (PDF magic bytes, HTML markup), then by file extension
and content type, and returns an :class:`ExtractedDocument` whose ``text`` is what
the chunker slices. Every refusal is an :class:`ExtractionError` with a stable
``reason`` code that callers map to HTTP errors or CLI "skipped" lines.

- PDF: ``pypdf``; one text per page, joined by a blank line; ``page_starts`` holds
  the offset of each page in ``text``. Encrypted PDFs open only with an empty
  user password.
- HTML: ``trafilatura`` to Markdown (headings survive, boilerplate goes), with a
  stdlib ``html.parser`` fallback when trafilatura finds no main content.
- Markdown, plain text and source code: decoded text, line endings normalised.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Literal

DocFormat = Literal["pdf", "markdown", "html", "text", "code"]
Reason = Literal[
    "encrypted_pdf",
    "corrupt_pdf",
    "empty_document",
    "binary_content",
    "unsupported_type",
    "too_large",
]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
CHARS_PER_PAGE = 3000

MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mdx"})
HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
TEXT_EXTENSIONS = frozenset({".txt", ".text", ".log", ".rst", ".csv", ".tsv", ".adoc", ".org"})
CODE_EXTENSIONS = frozenset(
    {
        ".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".go", ".rs", ".java",
        ".kt", ".kts", ".scala", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cs",
        ".rb", ".php", ".swift", ".m", ".lua", ".pl", ".r", ".jl", ".hs", ".ex", ".exs",
        ".erl", ".clj", ".dart", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".sql", ".toml",
        ".yaml", ".yml", ".json", ".ini", ".cfg", ".conf", ".xml", ".proto", ".graphql",
        ".css", ".scss", ".vue", ".svelte", ".tf", ".cmake", ".gradle", ".mk",
    }
)  # fmt: skip
CODE_FILENAMES = frozenset(
    {"makefile", "dockerfile", "containerfile", "justfile", "rakefile", "gemfile", "cmakelists.txt"}
)
_TEXTUAL_CONTENT_TYPES = frozenset(
    {"application/json", "application/xml", "application/x-yaml", "application/yaml",
     "application/toml", "application/javascript", "application/x-sh"}
)  # fmt: skip
_HTML_SNIFF = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.I | re.S)
_CTRL_ALLOWED = frozenset("\t\n\r\f\v")
_MAX_CONTROL_RATIO = 0.01


class ExtractionError(Exception):
    """A document that cannot be ingested; ``reason`` is stable, ``message`` is for humans."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    """The text of one document, ready for :func:`mongars.research.chunking.chunk_document`.

    ``text`` has ``\\n`` line endings. For ``format == "html"`` it is Markdown (so
    headings survive). ``pages`` is the PDF page count, otherwise an estimate
    (``ceil(len(text) / 3000)``, at least 1). ``page_starts[i]`` is the offset in
    ``text`` where PDF page ``i + 1`` begins (empty for other formats).
    ``source`` is the filename given to :func:`extract`.
    """

    title: str
    text: str
    format: DocFormat
    pages: int
    source: str = ""
    page_starts: list[int] = field(default_factory=list)

    def page_at(self, offset: int) -> int | None:
        """1-based page holding character ``offset`` of ``text``; None when not a PDF."""
        if not self.page_starts:
            return None
        lo, hi = 0, len(self.page_starts) - 1
        while lo < hi:  # last page start <= offset
            mid = (lo + hi + 1) // 2
            if self.page_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1


def extract(
    data: bytes,
    *,
    filename: str,
    content_type: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ExtractedDocument:
    """Extract the text of ``data``; raise :class:`ExtractionError` when it cannot be used."""
    if len(data) > max_bytes:
        raise ExtractionError(
            "too_large", f"{filename}: {len(data)} bytes is over the limit of {max_bytes} bytes"
        )
    path = PurePath(filename)
    ext = path.suffix.lower()
    mime, charset = _parse_content_type(content_type)
    if b"%PDF-" in data[:1024]:
        return _extract_pdf(data, filename)
    if ext == ".pdf" or mime == "application/pdf":
        raise ExtractionError("corrupt_pdf", f"{filename}: not a PDF (no %PDF- header)")

    labelled_text = (
        ext in MARKDOWN_EXTENSIONS | HTML_EXTENSIONS | TEXT_EXTENSIONS | CODE_EXTENSIONS
        or path.name.lower() in CODE_FILENAMES
        or mime.startswith("text/")
        or mime in _TEXTUAL_CONTENT_TYPES
    )
    text = _decode(data, charset)
    if text is None:
        if labelled_text:
            raise ExtractionError("binary_content", f"{filename}: binary data, not text")
        raise ExtractionError("unsupported_type", f"{filename}: unsupported file type")

    if _HTML_SNIFF.match(data[:2048]) or ext in HTML_EXTENSIONS or mime == "text/html":
        return _extract_html(text, filename)
    if ext in MARKDOWN_EXTENSIONS or mime == "text/markdown":
        return _finish(filename, _markdown_title(text), text, "markdown")
    if ext in CODE_EXTENSIONS or path.name.lower() in CODE_FILENAMES:
        return _finish(filename, path.name, text, "code")
    return _finish(filename, path.name, text, "text")


def estimate_pages(text: str) -> int:
    """Pages of a non-PDF document: one per 3,000 characters, at least 1."""
    return max(1, math.ceil(len(text) / CHARS_PER_PAGE))


# --- helpers -------------------------------------------------------------------------


def _parse_content_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    mime, _, params = content_type.partition(";")
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", params, re.I)
    return mime.strip().lower(), match.group(1) if match else None


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _finish(filename: str, title: str, text: str, fmt: DocFormat) -> ExtractedDocument:
    text = _normalise(text)
    if not text.strip():
        raise ExtractionError("empty_document", f"{filename}: no text in this document")
    return ExtractedDocument(
        title=title or PurePath(filename).name,
        text=text,
        format=fmt,
        pages=estimate_pages(text),
        source=filename,
    )


def _decode(data: bytes, declared: str | None) -> str | None:
    """Decoded text, or None when ``data`` is not text (NUL bytes, control characters)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data:
        return None
    text: str | None = None
    for encoding in ("utf-8-sig", declared):
        if encoding:
            try:
                text = data.decode(encoding)
                break
            except (UnicodeDecodeError, LookupError):
                continue
    if text is None:
        text = _guess_charset(data)
    if text is None or _control_ratio(text) > _MAX_CONTROL_RATIO:
        return None
    return text


def _guess_charset(data: bytes) -> str | None:
    """Legacy 8-bit text: Western (cp1252) when it reads like it, else charset-normalizer."""
    western = data.decode("cp1252", errors="replace")
    if "\ufffd" not in western and _reads_western(western):
        return western
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return str(best) if best is not None else None


def _reads_western(text: str) -> bool:
    """Accented letters mostly stand alone between ASCII ones (runs mean another script)."""
    non_ascii = runs = 0
    previous_non_ascii = False
    for ch in text:
        if ord(ch) < 128:
            previous_non_ascii = False
            continue
        if unicodedata.category(ch)[0] not in "LPSZ":
            return False
        non_ascii += 1
        runs += previous_non_ascii
        previous_non_ascii = True
    return runs <= 0.3 * non_ascii


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    sample = text[:65536]
    bad = sum(
        1 for ch in sample if ch not in _CTRL_ALLOWED and unicodedata.category(ch) in ("Cc", "Cs")
    )
    return bad / len(sample)


def _markdown_title(text: str) -> str:
    match = re.search(r"^ {0,3}#[ \t]+(.+?)[ \t#]*$", text, re.M)
    if match:
        return match.group(1).strip()[:200]
    return _first_line(text)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _extract_html(html: str, filename: str) -> ExtractedDocument:
    import trafilatura

    with warnings.catch_warnings():
        # trafilatura/lxml may warn on malformed markup; bad markup is expected input here.
        warnings.simplefilter("ignore")
        body = trafilatura.extract(
            html,
            output_format="markdown",
            include_formatting=True,
            include_comments=False,
            include_links=False,
            include_images=False,
            include_tables=True,
            favor_recall=True,
            deduplicate=False,
        )
        metadata = trafilatura.extract_metadata(html)
    fallback = _HtmlText()
    fallback.feed(html)
    fallback.close()
    if not body or not body.strip():
        body = fallback.text()
    title = (metadata.title if metadata is not None else None) or fallback.title.strip()
    return _finish(filename, (title or _markdown_title(body or "")).strip(), body or "", "html")


def _read_pdf(data: bytes, filename: str, *, strict: bool) -> tuple[list[str], str | None]:
    from pypdf import PdfReader

    with warnings.catch_warnings():
        # pypdf warns about the damage it repairs; damaged PDFs are expected input.
        warnings.simplefilter("ignore")
        reader = PdfReader(io.BytesIO(data), strict=strict)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("encrypted_pdf", f"{filename}: the PDF is password-protected")
        texts = [_normalise(page.extract_text() or "").strip() for page in reader.pages]
        title = reader.metadata.title if reader.metadata is not None else None
    return texts, str(title) if title else None


def _extract_pdf(data: bytes, filename: str) -> ExtractedDocument:
    from pypdf.errors import DependencyError, FileNotDecryptedError

    if b"%%EOF" not in data[-8192:]:
        raise ExtractionError("corrupt_pdf", f"{filename}: truncated PDF (no end-of-file marker)")
    page_texts: list[str] = []
    title: str | None = None
    repaired = False
    for strict in (True, False):  # lenient parsing repairs minor damage
        try:
            page_texts, title = _read_pdf(data, filename, strict=strict)
            break
        except ExtractionError:
            raise
        except (DependencyError, FileNotDecryptedError) as exc:
            raise ExtractionError("encrypted_pdf", f"{filename}: cannot decrypt the PDF") from exc
        except Exception as exc:  # pypdf raises many types on damaged files
            if not strict:
                raise ExtractionError("corrupt_pdf", f"{filename}: unreadable PDF ({exc})") from exc
            repaired = True
    if not any(page_texts):
        if not page_texts or repaired:
            raise ExtractionError("corrupt_pdf", f"{filename}: damaged PDF, no readable text")
        raise ExtractionError(
            "empty_document", f"{filename}: no text in this PDF (scanned images need OCR)"
        )
    page_starts: list[int] = []
    parts: list[str] = []
    offset = 0
    for page_text in page_texts:
        page_starts.append(offset)
        parts.append(page_text)
        offset += len(page_text) + 2
    text = "\n\n".join(parts)
    title = str(title).strip() if title else _first_line(text)
    return ExtractedDocument(
        title=title or PurePath(filename).name,
        text=text,
        format="pdf",
        pages=len(page_texts),
        source=filename,
        page_starts=page_starts,
    )


class _HtmlText(HTMLParser):
    """Fallback HTML-to-text: drops scripts and styles, keeps headings as Markdown."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "section", "article", "blockquote", "ul", "ol", "table",
         "header", "footer", "nav", "main", "aside", "dd", "dt", "hr", "pre"}
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self._parts: list[str] = []
        self._skip_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self._SKIP:
            self._skip_depth += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self._BLOCK:
            self._parts.append("\n\n" if tag == "p" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in self._BLOCK:
            self._parts.append("\n\n" if tag[0] in "hp" else "\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip_depth:
            self._parts.append(data)

    def text(self) -> str:
        raw = "".join(self._parts)
        lines = [" ".join(line.split()) for line in raw.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
