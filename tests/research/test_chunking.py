"""Chunking: structure (headings, fences, pages, code), overlap, sizes and offsets."""

from __future__ import annotations

import itertools
import re

import pytest

from mongars.research.chunking import Chunk, chunk_document, estimate_tokens
from mongars.research.corpus import make_corpus
from mongars.research.extract import ExtractedDocument, extract
from tests.research import docgen


def assert_offsets_map_back(doc: ExtractedDocument, chunks: list[Chunk]) -> None:
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert doc.text[chunk.start_char : chunk.end_char] == chunk.text


def assert_covers_all_text(doc: ExtractedDocument, chunks: list[Chunk]) -> None:
    covered = bytearray(len(doc.text))
    for chunk in chunks:
        covered[chunk.start_char : chunk.end_char] = b"\x01" * (chunk.end_char - chunk.start_char)
    lost = [ch for ch, seen in zip(doc.text, covered, strict=True) if not seen and not ch.isspace()]
    assert lost == []


def fence_lines(text: str) -> int:
    return len(re.findall(r"^ {0,3}```", text, re.M))


def guide_chunks(max_tokens: int = 40, overlap: int = 10) -> tuple[ExtractedDocument, list[Chunk]]:
    doc = extract(docgen.MARKDOWN_GUIDE.encode(), filename="guide.md")
    return doc, chunk_document(doc, max_tokens=max_tokens, overlap_tokens=overlap)


def test_markdown_heading_paths() -> None:
    doc, chunks = guide_chunks()
    assert_offsets_map_back(doc, chunks)
    assert_covers_all_text(doc, chunks)
    by_text = {c.text.split("\n")[0]: c.heading_path for c in chunks}
    assert by_text["# Zephyr Guide"] == ["Zephyr Guide"]
    assert by_text["### Windows"] == ["Zephyr Guide", "Install", "Windows"]
    assert by_text["## Usage"] == ["Zephyr Guide", "Usage"]
    linux = next(c for c in chunks if "apt install" in c.text)
    assert linux.heading_path == ["Zephyr Guide", "Install", "Linux"]
    assert linux.section == "Zephyr Guide > Install > Linux"
    assert linux.context_text() == f"Zephyr Guide > Install > Linux\n\n{linux.text}"


def test_a_chunk_never_crosses_a_heading() -> None:
    _, chunks = guide_chunks(max_tokens=300)
    for chunk in chunks:
        outside_fences = re.sub(r"```.*?```", "", chunk.text, flags=re.S)
        headings = re.findall(r"^#+ (.+)$", outside_fences, re.M)
        # Headings inside a chunk are its own path (a heading-only section joins the next).
        assert headings == chunk.heading_path[-len(headings) :] or headings == []


def test_heading_without_body_joins_next_section() -> None:
    _, chunks = guide_chunks(max_tokens=300)
    install = next(c for c in chunks if c.text.startswith("## Install"))
    assert "Install the package first." in install.text
    assert all(c.text.strip() not in ("## Install", "### Linux") for c in chunks)


def test_code_fence_is_never_split() -> None:
    # The fence (about 30 tokens) fits; the document does not, and a blank line sits in it.
    for max_tokens in (35, 40, 60, 80):
        _, chunks = guide_chunks(max_tokens=max_tokens, overlap=10)
        fences = [c for c in chunks if "```" in c.text]
        assert fences, max_tokens
        for chunk in fences:
            assert fence_lines(chunk.text) % 2 == 0, chunk.text
            assert "zephyr --init" in chunk.text and "sudo apt install zephyr" in chunk.text
        assert all(c.token_estimate <= max_tokens for c in chunks)


def test_oversized_fence_is_split_on_lines_and_reopened() -> None:
    body = "\n".join(f"print('line {i} of a very long listing')" for i in range(200))
    text = f"# Code\n\nIntro.\n\n```python\n{body}\n```\n\nAfter the fence.\n"
    doc = extract(text.encode(), filename="long.md")
    chunks = chunk_document(doc, max_tokens=100, overlap_tokens=20)

    pieces = [c for c in chunks if "print('line" in c.text]
    assert len(pieces) > 3
    for piece in pieces:
        assert piece.text.startswith("```python\n") and piece.text.endswith("\n```")
        assert piece.token_estimate <= 100
        inner = doc.text[piece.start_char : piece.end_char]
        assert inner in piece.text  # offsets cover exactly the source lines held
        assert all(line.startswith(("print(", "```")) for line in inner.splitlines())
    held = "".join(re.sub(r"^```python\n|\n```$", "", p.text) + "\n" for p in pieces)
    assert held.strip().splitlines() == body.splitlines()
    assert chunks[-1].text == "After the fence."


def test_overlap_within_a_section_only() -> None:
    paragraphs = [f"Paragraph {i} says something specific about item {i}." for i in range(40)]
    text = "# One\n\n" + "\n\n".join(paragraphs) + "\n\n# Two\n\nShort section.\n"
    doc = extract(text.encode(), filename="o.md")
    chunks = chunk_document(doc, max_tokens=60, overlap_tokens=15)
    assert_offsets_map_back(doc, chunks)

    one = [c for c in chunks if c.heading_path == ["One"]]
    assert len(one) > 3
    for previous, current in itertools.pairwise(one):
        assert current.start_char < previous.end_char, "consecutive chunks share text"
        shared = doc.text[current.start_char : previous.end_char]
        assert 5 <= estimate_tokens(shared) <= 25
        assert current.text.startswith(shared)
    two = next(c for c in chunks if c.heading_path == ["Two"])
    assert two.start_char >= one[-1].end_char


def test_no_overlap_when_disabled() -> None:
    _, chunks = guide_chunks(max_tokens=30, overlap=0)
    for previous, current in itertools.pairwise(chunks):
        assert current.start_char >= previous.end_char


@pytest.mark.timeout(10)
def test_one_megabyte_line_chunks_quickly() -> None:
    doc = extract(docgen.huge_line(), filename="huge.txt")
    chunks = chunk_document(doc)
    assert len(chunks) > 500
    assert all(c.token_estimate <= 350 for c in chunks)
    assert_offsets_map_back(doc, chunks)
    assert_covers_all_text(doc, chunks)


@pytest.mark.timeout(10)
def test_one_megabyte_without_any_space() -> None:
    doc = extract(b"x" * 1_000_000, filename="blob.md")
    chunks = chunk_document(doc, max_tokens=200, overlap_tokens=20)
    assert all(c.token_estimate <= 200 for c in chunks)
    assert sum(len(c.text) for c in chunks) == 1_000_000


def test_unicode_is_preserved_and_sized() -> None:
    text = ("日本語のテキストです。" * 300 + "\n\n" + docgen.UNICODE_TEXT).encode()
    doc = extract(text, filename="u.txt")
    chunks = chunk_document(doc, max_tokens=50, overlap_tokens=5)
    assert_offsets_map_back(doc, chunks)
    assert_covers_all_text(doc, chunks)
    assert all(c.token_estimate <= 50 for c in chunks)
    assert chunks[0].text.startswith("日本語のテキストです。")  # cut after a full stop
    assert any("👩\u200d💻" in c.text for c in chunks)


def test_pdf_chunks_carry_their_page() -> None:
    pages = [
        f"Page {n} fact: the tide table code is TIDE-{n}00. " + "Filler. " * 60 for n in (1, 2, 3)
    ]
    doc = extract(docgen.pdf(pages), filename="tides.pdf")
    chunks = chunk_document(doc, max_tokens=80, overlap_tokens=10)
    assert_offsets_map_back(doc, chunks)
    for n in (1, 2, 3):
        holder = next(c for c in chunks if f"TIDE-{n}00" in c.text)
        assert holder.page == n
    for chunk in chunks:
        assert doc.page_at(chunk.start_char) == doc.page_at(chunk.end_char - 1) == chunk.page


def test_source_code_splits_at_top_level_definitions() -> None:
    functions = [
        f"def function_{i}(value):\n    total = value * {i}\n\n    return total + {i}\n"
        for i in range(30)
    ]
    source = "import math\n\n\n" + "\n\n".join(functions)
    doc = extract(source.encode(), filename="pkg/module.py")
    chunks = chunk_document(doc, max_tokens=60, overlap_tokens=0)
    assert_offsets_map_back(doc, chunks)
    assert all(c.heading_path == ["pkg/module.py"] for c in chunks)
    assert chunks[0].context_text().startswith("pkg/module.py\n\n")
    for chunk in chunks[1:]:
        assert chunk.text.startswith("def function_")  # never inside a body
        assert chunk.text.count("def ") == chunk.text.count("return total")


def test_custom_token_counter() -> None:
    def words(text: str) -> int:
        return len(text.split())

    doc = extract(docgen.huge_line(50_000), filename="w.txt")
    chunks = chunk_document(doc, max_tokens=100, overlap_tokens=10, count_tokens=words)
    assert all(words(c.text) <= 100 for c in chunks)
    assert all(c.token_estimate == words(c.text) for c in chunks)
    assert max(words(c.text) for c in chunks) >= 80


@pytest.mark.parametrize(("max_tokens", "overlap"), [(4, 0), (100, 100), (100, -1)])
def test_invalid_sizes(max_tokens: int, overlap: int) -> None:
    doc = extract(b"text", filename="t.txt")
    with pytest.raises(ValueError):
        chunk_document(doc, max_tokens=max_tokens, overlap_tokens=overlap)


def test_html_chunks_keep_headings() -> None:
    doc = extract(docgen.html_page(), filename="heron.html")
    chunks = chunk_document(doc, max_tokens=60, overlap_tokens=10)
    replication = next(c for c in chunks if "Replicas follow" in c.text)
    assert replication.heading_path[-1] == "Replication"


def test_corpus_is_deterministic_and_answerable() -> None:
    corpus = make_corpus(8, pages_per_doc=3, seed=42)
    assert corpus == make_corpus(8, pages_per_doc=3, seed=42)
    assert corpus != make_corpus(8, pages_per_doc=3, seed=43)
    assert {name.rsplit(".", 1)[1] for name, _, _ in corpus} == {"pdf", "md", "html", "txt"}
    answers = [qa.answer for _, _, qas in corpus for qa in qas]
    assert len(answers) == len(set(answers)) == 24

    total_pages = 0
    for filename, data, questions in corpus:
        doc = extract(data, filename=filename)
        total_pages += doc.pages
        chunks = chunk_document(doc)
        for qa in questions:
            assert qa.filename == filename and qa.question.endswith("?")
            holders = [c for c in chunks if qa.answer in c.text]
            assert holders, qa
            if doc.format == "pdf":
                assert holders[0].page == qa.page
    assert total_pages == 24
