"""A generated document corpus with known facts, for `mongars bench docs` and tests.

:func:`make_corpus` is deterministic for a seed. Each document (PDF, Markdown, HTML
or plain text, in turn) holds filler prose about invented modules, one unique fact
per page, and distractor sentences naming other modules. Each fact comes with a
question whose answering passage is known: a retrieved chunk answers it when it
comes from ``QA.filename`` and contains ``QA.answer`` (a code such as
``BLUE-HERON-42`` or a number, never wrapped across lines in any format).

PDFs are written by a minimal writer here (Helvetica, one text stream per page),
so the benchmark needs no PDF library beyond the ``pypdf`` reader. Tests build
their own PDFs with a real PDF library as well (``tests/research/docgen.py``).
"""

from __future__ import annotations

import random
from typing import NamedTuple

CHARS_PER_PAGE = 3000
_CHARS_PER_PDF_LINE = 80

_SYLLABLES = (
    "zeph", "yr", "quil", "lon", "mar", "bel", "tor", "vex", "an", "dra", "kel", "ios",
    "nim", "bus", "or", "ca", "sol", "ven", "tri", "ax", "pel", "ion", "gal", "ur",
)  # fmt: skip
_COLOURS = ("BLUE", "RED", "AMBER", "SILVER", "GREEN", "VIOLET", "CORAL", "IVORY")
_ANIMALS = ("HERON", "OTTER", "LYNX", "FALCON", "BISON", "MARTEN", "IBIS", "ORCA")
_FILLER = (
    "The {m} module coordinates scheduled work across the cluster and reports its state.",
    "Operators review the {m} dashboards every morning before the release meeting.",
    "Most configuration for {m} lives in a single settings file kept under version control.",
    "When the {m} queue grows, workers are added until the backlog drains.",
    "The team documented how {m} recovers after a power failure during maintenance.",
    "Logs from {m} are rotated daily and kept for thirty days on the archive volume.",
    "A migration plan for {m} was discussed but postponed until the next quarter.",
    "Tests for {m} run on every change and block the merge when they fail.",
    "The {m} interface exposes a small set of endpoints described in the handbook.",
    "Security reviews of {m} focus on input validation and access control.",
)
_FACTS = (
    (
        "The project codename for the {m} module is {code}.",
        "What is the project codename for the {m} module?",
    ),
    (
        "The {m} service listens on port {port} in production.",
        "Which port does the {m} service listen on in production?",
    ),
    (
        "The on-call escalation code for {m} incidents is {code}.",
        "What escalation code is used for {m} incidents?",
    ),
    (
        "The {m} nightly backup keeps exactly {port} snapshots before pruning.",
        "How many snapshots does the {m} nightly backup keep?",
    ),
    (
        "The licence key prefix assigned to the {m} team is {code}.",
        "What licence key prefix is assigned to the {m} team?",
    ),
)
_FORMATS = ("pdf", "md", "html", "txt")


class QA(NamedTuple):
    """A question, the unique answer string, the fact sentence holding it, and where."""

    question: str
    answer: str
    fact: str
    filename: str
    page: int


class CorpusDoc(NamedTuple):
    """One generated document; unpacks as ``(filename, data, questions)``."""

    filename: str
    data: bytes
    questions: list[QA]


def make_corpus(n_docs: int, pages_per_doc: int = 10, seed: int = 0) -> list[CorpusDoc]:
    """``n_docs`` documents of ``pages_per_doc`` pages each, one answerable fact per page."""
    rng = random.Random(seed)
    names = _unique_names(rng, n_docs * pages_per_doc + 8)
    used_answers: set[str] = set()
    docs: list[CorpusDoc] = []
    for d in range(n_docs):
        fmt = _FORMATS[d % len(_FORMATS)]
        filename = f"doc-{d:04d}-{names[d].lower()}.{fmt}"
        title = f"{names[d]} operations handbook"
        pages: list[list[str]] = []
        questions: list[QA] = []
        for p in range(pages_per_doc):
            module = names[d * pages_per_doc + p]
            fact, question, answer = _fact(rng, module, used_answers)
            pages.append(_page_paragraphs(rng, module, names, fact))
            questions.append(QA(question, answer, fact, filename, p + 1))
        docs.append(CorpusDoc(filename, _render(fmt, title, pages), questions))
    return docs


def _unique_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _fact(rng: random.Random, module: str, used: set[str]) -> tuple[str, str, str]:
    fact_tpl, question_tpl = rng.choice(_FACTS)
    while True:
        code = f"{rng.choice(_COLOURS)}-{rng.choice(_ANIMALS)}-{rng.randint(10, 9999)}"
        port = str(rng.randint(10000, 65000))
        answer = code if "{code}" in fact_tpl else port
        if answer not in used:
            used.add(answer)
            break
    return (
        fact_tpl.format(m=module, code=code, port=port),
        question_tpl.format(m=module),
        answer,
    )


def _page_paragraphs(rng: random.Random, module: str, names: list[str], fact: str) -> list[str]:
    """About CHARS_PER_PAGE characters of paragraphs; the fact sits in one of them."""
    paragraphs: list[str] = []
    size = 0
    while size < CHARS_PER_PAGE - 400:
        subject = module if rng.random() < 0.5 else rng.choice(names)
        sentences = [rng.choice(_FILLER).format(m=subject) for _ in range(rng.randint(2, 4))]
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    position = rng.randrange(len(paragraphs))
    paragraphs[position] = f"{paragraphs[position]} {fact}"
    return paragraphs


def _render(fmt: str, title: str, pages: list[list[str]]) -> bytes:
    if fmt == "pdf":
        return simple_pdf(title, [_wrap("\n\n".join(page)) for page in pages])
    if fmt == "md":
        parts = [f"# {title}"]
        for number, paragraphs in enumerate(pages, 1):
            parts.append(f"## Section {number}")
            parts.extend(paragraphs)
        return ("\n\n".join(parts) + "\n").encode()
    if fmt == "html":
        sections = "".join(
            f"<h2>Section {n}</h2>" + "".join(f"<p>{p}</p>" for p in paragraphs)
            for n, paragraphs in enumerate(pages, 1)
        )
        return (
            f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
            '<nav><a href="/">Home</a> <a href="/docs">Docs</a> <a href="/blog">Blog</a></nav>'
            f"<main><article><h1>{title}</h1>{sections}</article></main>"
            "<footer>Copyright Example Corp. All rights reserved.</footer></body></html>"
        ).encode()
    return ("\n\n".join("\n\n".join(page) for page in pages) + "\n").encode()


def _wrap(text: str) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        line = ""
        for word in paragraph.split():
            if line and len(line) + 1 + len(word) > _CHARS_PER_PDF_LINE:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.extend([line, ""])
    return lines[:-1]


def simple_pdf(title: str, pages: list[list[str]]) -> bytes:
    """A valid PDF with one page per list of lines (Latin-1 text, Helvetica 10 pt).

    The line spacing tightens on a page with many lines, so each entry is one page.
    """
    physical = pages or [[]]
    n = len(physical)
    # Objects: 1 catalog, 2 pages, 3 font, 4 info, then (page, content) pairs.
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(f"{5 + 2 * i} 0 R".encode() for i in range(n))
        + f"] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Title (" + _pdf_string(title) + b") /Producer (monGARS corpus) >>",
    ]
    for i, lines in enumerate(physical):
        leading = min(12.0, 700 / max(len(lines), 1))
        stream = f"BT /F1 10 Tf {leading:.2f} TL 56 750 Td ".encode() + b" ".join(
            b"(" + _pdf_string(line) + b") Tj T*" for line in lines
        )
        stream += b" ET"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {6 + 2 * i} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 4 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
