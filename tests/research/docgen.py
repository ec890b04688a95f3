"""Builds test documents: real PDFs (fpdf2), Markdown, HTML, text and bad input.

Reused by the document API tests and, through :mod:`mongars.research.corpus`
(re-exported here), by the benchmark corpus.
"""

from __future__ import annotations

import io

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from pypdf import PdfReader, PdfWriter

from mongars.research.corpus import QA, CorpusDoc, make_corpus, simple_pdf

__all__ = [
    "HTML_ARTICLE",
    "MARKDOWN_GUIDE",
    "QA",
    "UNICODE_TEXT",
    "CorpusDoc",
    "binary_as_text",
    "corrupt_pdf",
    "encrypted_pdf",
    "html_page",
    "huge_line",
    "make_corpus",
    "pdf",
    "simple_pdf",
    "whitespace_file",
]


def pdf(pages: list[str], *, title: str | None = "Generated Test PDF") -> bytes:
    """A PDF built by fpdf2, one page per string (Latin-1 text, Helvetica)."""
    doc = FPDF()
    doc.set_font("Helvetica", size=11)
    if title:
        doc.set_title(title)
    for text in pages:
        doc.add_page()
        doc.multi_cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(doc.output())


def blank_pdf(n_pages: int = 2) -> bytes:
    """A PDF whose pages hold no text at all (like a scan without OCR)."""
    doc = FPDF()
    for _ in range(n_pages):
        doc.add_page()
        doc.rect(20, 20, 100, 60)
    return bytes(doc.output())


def encrypted_pdf(user_password: str = "s3cret", owner_password: str = "owner") -> bytes:
    """A real PDF encrypted by pypdf; an empty ``user_password`` opens without one."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(["Top secret plans."]))))
    writer.encrypt(user_password, owner_password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def corrupt_pdf() -> bytes:
    """A real PDF truncated half-way (as from an interrupted download)."""
    data = pdf(["First page text. " * 40, "Second page text. " * 40])
    return data[: len(data) // 2]


MARKDOWN_GUIDE = """# Zephyr Guide

Zephyr is a scheduling module. This introduction explains what it does.

## Install

Install the package first. It needs Python 3.11 or later.

### Linux

On Linux use the system package manager, then run the setup script.

```bash
sudo apt install zephyr

# a blank line inside the fence must not split it
zephyr --init
```

### Windows

Windows users run the installer and follow the wizard.

## Usage

Start the service with `zephyr start`. Logs go to the journal.
"""

HTML_ARTICLE = """<p>The Heron module stores its state in a write-ahead log so that a crash never
loses a committed change. Recovery replays the log from the last checkpoint.</p>
<h2>Checkpoints</h2>
<p>A checkpoint is written every five minutes or after ten thousand changes, whichever
comes first. Old log segments are deleted once a checkpoint covers them.</p>
<h2>Replication</h2>
<p>Replicas follow the primary by streaming log segments. A replica that falls too far
behind fetches a fresh checkpoint instead of replaying every segment.</p>"""


def html_page(article: str = HTML_ARTICLE, *, title: str = "Heron storage internals") -> bytes:
    """A full page: navigation, sidebar and footer boilerplate around one article."""
    nav = " ".join(f'<a href="/section/{i}">Section {i}</a>' for i in range(12))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} | Example Docs</title>
<script>var tracking = "do not index me";</script><style>body {{ color: red; }}</style></head>
<body><header><nav>{nav}</nav></header>
<aside><ul><li><a href="/a">Related: gardening tips</a></li><li><a href="/b">Subscribe</a></li></ul></aside>
<main><article><h1>{title}</h1>
{article}
</article></main>
<footer><p>Copyright 2024 Example Corp. All rights reserved. Privacy policy. Cookie settings.</p></footer>
</body></html>""".encode()


UNICODE_TEXT = (
    "Élève à l'école : « déjà vu », garçon, œuvre, naïve, Noël.\n\n"
    "日本語のテキストです。中文文本也在这里。한국어 문장입니다.\n\n"
    "Emoji keep their meaning 🎉🚀 and so do combined ones 👩‍💻.\n"
)


def binary_as_text(size: int = 4096, seed: int = 7) -> bytes:
    """Random bytes (with NULs), as a binary file mislabelled ``.txt`` would hold."""
    import random

    return random.Random(seed).randbytes(size)


def whitespace_file() -> bytes:
    return b"   \n\n\t  \r\n   \n"


def huge_line(size: int = 1_000_000) -> bytes:
    """One line of about ``size`` bytes of words and sentences, no newline."""
    sentence = b"The quick brown fox jumps over the lazy dog near the river bank. "
    return (sentence * (size // len(sentence) + 1))[:size]
