"""Readable text from fetched bodies: main content of HTML pages, decoded plain text.

HTML goes through trafilatura (boilerplate such as menus, footers and comments
removed); when it finds no main content (very short or unusual pages), a plain
text rendering of the whole body is used instead, with scripts and styles
dropped. The title is the page's ``<title>``, else trafilatura's metadata
(Open Graph, first heading). These functions are CPU-bound and synchronous:
call them in a worker thread from async code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.html
import trafilatura
from lxml import etree

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "head", "iframe", "object")
_BLOCK_TAGS = frozenset(
    "p div br li ul ol h1 h2 h3 h4 h5 h6 tr table section article header footer "
    "blockquote pre dd dt dl figcaption main aside nav form hr td th".split()
)


@dataclass(frozen=True)
class Readable:
    title: str
    text: str


def decode(body: bytes, charset: str | None = None, *, html: bool = False) -> str:
    """Decode with the declared charset, else a ``<meta charset>``, else UTF-8, else cp1252."""
    candidates = [charset] if charset else []
    if html:
        match = _META_CHARSET.search(body[:4096])
        if match:
            candidates.append(match.group(1).decode("ascii"))
    for name in candidates:
        try:
            return body.decode(name, "replace")
        except LookupError:
            continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")


def html_to_readable(body: bytes, charset: str | None = None, url: str | None = None) -> Readable:
    html = decode(body, charset, html=True)
    tree = _parse(html)
    title = _title(tree) if tree is not None else ""
    text = trafilatura.extract(
        html, url=url, include_comments=False, include_tables=True, deduplicate=False
    )
    if not title:
        metadata = trafilatura.extract_metadata(html, default_url=url)
        title = _clean(metadata.title) if metadata is not None and metadata.title else ""
    if not text or not text.strip():
        text = _plain_text(tree) if tree is not None else ""
    return Readable(title=title, text=text.strip())


def text_to_readable(
    body: bytes, charset: str | None = None, *, markdown: bool = False
) -> Readable:
    text = decode(body, charset).replace("\r\n", "\n").strip()
    title = ""
    if markdown:
        heading = re.search(r"^#{1,2}\s+(.+?)\s*#*\s*$", text, re.M)
        title = heading.group(1) if heading else ""
    return Readable(title=title, text=text)


def _parse(html: str) -> lxml.html.HtmlElement | None:
    if not html.strip():
        return None
    try:
        parser = lxml.html.HTMLParser(encoding="utf-8")
        return lxml.html.document_fromstring(html.encode("utf-8"), parser=parser)
    except (etree.ParserError, ValueError):
        return None


def _title(tree: lxml.html.HtmlElement) -> str:
    found = tree.find(".//title")
    return _clean(found.text_content()) if found is not None else ""


def _clean(text: str) -> str:
    return " ".join(text.split())


def _plain_text(tree: lxml.html.HtmlElement) -> str:
    for element in list(tree.iter(*_DROP_TAGS)):
        element.drop_tree()
    for element in tree.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCK_TAGS:
            element.tail = "\n" + (element.tail or "")
    lines = (_clean(line) for line in tree.text_content().splitlines())
    return "\n".join(line for line in lines if line)
