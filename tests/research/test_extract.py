"""Text extraction: each format, content sniffing, and every refusal reason."""

from __future__ import annotations

import pytest

from mongars.research.extract import ExtractionError, extract
from tests.research import docgen


def reason_of(data: bytes, filename: str, **kwargs: object) -> str:
    with pytest.raises(ExtractionError) as info:
        extract(data, filename=filename, **kwargs)  # type: ignore[arg-type]
    assert info.value.message and filename in str(info.value)
    return info.value.reason


def test_pdf_pages_title_and_page_offsets() -> None:
    pages = [f"Page {n} talks about topic number {n}. Café crème à volonté." for n in (1, 2, 3)]
    doc = extract(docgen.pdf(pages, title="Quarterly Report"), filename="report.pdf")

    assert doc.format == "pdf"
    assert doc.title == "Quarterly Report"
    assert doc.pages == 3
    assert len(doc.page_starts) == 3 and doc.page_starts[0] == 0
    for number in (1, 2, 3):
        offset = doc.text.index(f"Page {number} talks about topic number {number}.")
        assert doc.page_at(offset) == number
        assert doc.page_starts[number - 1] == offset
    assert "Café crème à volonté" in doc.text


def test_pdf_without_metadata_title_uses_first_line() -> None:
    doc = extract(docgen.pdf(["Annual summary\nMore text."], title=None), filename="x.pdf")
    assert doc.title == "Annual summary"


def test_pdf_detected_by_content_whatever_the_name() -> None:
    doc = extract(docgen.pdf(["Hidden PDF body."]), filename="notes.txt", content_type="text/plain")
    assert doc.format == "pdf" and "Hidden PDF body." in doc.text


def test_corpus_pdf_writer_reads_back() -> None:
    data = docgen.simple_pdf("Corpus (test)", [["Line one (a)", "", "Line two"], ["Second"]])
    doc = extract(data, filename="c.pdf")
    assert doc.title == "Corpus (test)" and doc.pages == 2
    assert "Line one (a)" in doc.text and doc.page_at(doc.text.index("Second")) == 2


def test_encrypted_pdf_is_refused() -> None:
    assert reason_of(docgen.encrypted_pdf("s3cret"), "locked.pdf") == "encrypted_pdf"


def test_pdf_encrypted_with_empty_user_password_opens() -> None:
    doc = extract(docgen.encrypted_pdf(user_password=""), filename="owner-only.pdf")
    assert "Top secret plans." in doc.text


def test_truncated_pdf_is_corrupt() -> None:
    assert reason_of(docgen.corrupt_pdf(), "broken.pdf") == "corrupt_pdf"


def test_damaged_pdf_body_is_corrupt() -> None:
    data = docgen.pdf(["Some text here."])
    damaged = data[:200] + b"\x00garbage" * 50 + data[-200:]
    assert reason_of(damaged, "damaged.pdf") == "corrupt_pdf"


def test_pdf_name_without_pdf_content_is_corrupt() -> None:
    assert reason_of(b"<html>not a pdf</html>", "fake.pdf") == "corrupt_pdf"
    assert reason_of(b"plain words", "x", content_type="application/pdf") == "corrupt_pdf"


def test_pdf_without_text_is_empty() -> None:
    assert reason_of(docgen.blank_pdf(), "scan.pdf") == "empty_document"


def test_markdown_is_kept_verbatim_with_title() -> None:
    doc = extract(docgen.MARKDOWN_GUIDE.encode(), filename="guide.md")
    assert doc.format == "markdown"
    assert doc.title == "Zephyr Guide"
    assert doc.text == docgen.MARKDOWN_GUIDE
    assert doc.pages == 1 and doc.page_starts == [] and doc.page_at(10) is None
    assert doc.source == "guide.md"


def test_markdown_by_content_type() -> None:
    doc = extract(b"# Title\n\nBody", filename="upload", content_type="text/markdown")
    assert doc.format == "markdown" and doc.title == "Title"


def test_html_drops_boilerplate_and_keeps_headings() -> None:
    doc = extract(docgen.html_page(), filename="heron.html")
    assert doc.format == "html"
    assert doc.title.startswith("Heron storage internals")
    assert "write-ahead log" in doc.text
    assert "## Checkpoints" in doc.text and "## Replication" in doc.text
    for boilerplate in ("Section 11", "gardening tips", "All rights reserved", "tracking", "color"):
        assert boilerplate not in doc.text


def test_html_sniffed_by_content_even_when_named_txt() -> None:
    doc = extract(docgen.html_page(), filename="saved.txt")
    assert doc.format == "html" and "<p>" not in doc.text and "Replicas follow" in doc.text


def test_html_with_only_scripts_is_empty() -> None:
    page = b"<!DOCTYPE html><html><head><script>var a = 1;</script></head><body> </body></html>"
    assert reason_of(page, "blank.html") == "empty_document"


def test_plain_text_bom_and_line_endings() -> None:
    doc = extract(b"\xef\xbb\xbfFirst line\r\nSecond line\rThird", filename="notes.txt")
    assert doc.format == "text"
    assert doc.text == "First line\nSecond line\nThird"
    assert doc.title == "notes.txt"


def test_legacy_charset_is_decoded() -> None:
    text = "Les élèves déjà présents reçoivent leur café à midi. " * 20
    doc = extract(text.encode("cp1252"), filename="ancien.txt")
    assert doc.text == text


def test_declared_charset_is_used() -> None:
    doc = extract(
        "Grüße".encode("latin-1"), filename="g", content_type="text/plain; charset=latin-1"
    )
    assert doc.text == "Grüße"


@pytest.mark.parametrize("filename", ["main.py", "lib.rs", "app.ts", "config.yaml", "Makefile"])
def test_source_code_by_extension(filename: str) -> None:
    doc = extract(b"def main():\n    return 0\n", filename=filename)
    assert doc.format == "code" and doc.title == filename


@pytest.mark.parametrize("filename", ["u.md", "u.txt", "u.html"])
def test_unicode_survives(filename: str) -> None:
    data = docgen.UNICODE_TEXT.encode()
    if filename.endswith(".html"):
        paragraphs = "".join(f"<p>{p}</p>" for p in docgen.UNICODE_TEXT.split("\n\n"))
        data = docgen.html_page(paragraphs, title="Unicode").replace(b"Heron", b"")
    doc = extract(data, filename=filename)
    for fragment in ("Élève à l'école", "« déjà vu »", "日本語のテキストです。", "한국어", "🎉🚀"):
        assert fragment in doc.text
    # trafilatura drops zero-width joiners: the emoji survive, the ZWJ sequence may not.
    zwj_sequence = "👩💻" if filename.endswith(".html") else "👩\u200d💻"
    assert zwj_sequence in doc.text


def test_utf16_with_bom_is_text() -> None:
    doc = extract("Bonjour ☃ le monde".encode("utf-16"), filename="w.txt")
    assert doc.text == "Bonjour ☃ le monde"


def test_binary_named_txt_is_refused() -> None:
    assert reason_of(docgen.binary_as_text(), "data.txt") == "binary_content"


def test_binary_without_nul_bytes_is_refused() -> None:
    data = bytes(b for b in docgen.binary_as_text(8192) if b != 0)
    assert reason_of(data, "data.md") == "binary_content"


def test_unknown_binary_type_is_unsupported() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + docgen.binary_as_text(512)
    assert reason_of(png, "photo.png", content_type="image/png") == "unsupported_type"


def test_unknown_extension_with_text_is_text() -> None:
    doc = extract(b"key = value\n", filename="settings.unknownext")
    assert doc.format == "text"


def test_whitespace_file_is_empty() -> None:
    assert reason_of(docgen.whitespace_file(), "blank.txt") == "empty_document"
    assert reason_of(b"", "zero.md") == "empty_document"


def test_too_large() -> None:
    assert reason_of(b"a" * 101, "big.txt", max_bytes=100) == "too_large"
    assert extract(b"a" * 100, filename="ok.txt", max_bytes=100).text == "a" * 100


def test_estimated_pages_for_text() -> None:
    doc = extract(b"x" * 6001, filename="long.txt")
    assert doc.pages == 3
