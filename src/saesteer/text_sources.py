"""Built-in English text sources that install from Debian packages (no hub, no network
beyond the package registry). Each yields cleaned documents of natural prose."""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

_BLOCKS = {"p", "li", "dd", "blockquote", "td"}
_SKIPPED = {"script", "style", "pre", "code", "nav", "head", "title", "table"}


class _Paragraphs(HTMLParser):
    """Collect the text of prose blocks (<p>, <li>, ...), skipping code and navigation."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._parts: list[str] = []
        self._depth = 0  # inside a prose block
        self._skip = 0  # inside code, navigation, ...

    def handle_starttag(self, tag, attrs):
        classes = dict(attrs).get("class") or ""
        if tag in _SKIPPED or any(c in classes for c in ("navheader", "navfooter", "toc")):
            self._skip += 1
        elif tag in _BLOCKS:
            self._depth += 1

    def handle_endtag(self, tag):
        if tag in _SKIPPED or (tag == "div" and self._skip and not self._parts):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS and self._depth:
            self._depth -= 1
            if not self._depth:
                self._flush()

    def handle_data(self, data):
        if self._depth and not self._skip:
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


def _grouped(paragraphs: list[str], target_chars: int = 2000) -> Iterator[str]:
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
        yield from _grouped(_prose(html_paragraphs(path)))


def fortune_documents(pattern: str) -> Iterator[str]:
    quotes = []
    for path in sorted(glob.glob(pattern)):
        if Path(path).suffix or Path(path).is_dir():  # skip the .dat/.u8 indexes
            continue
        text = Path(path).read_text(errors="replace")
        quotes += [" ".join(q.split()) for q in text.split("\n%\n")]
    yield from _grouped([q for q in quotes if len(q.split()) >= 5])


@dataclass(frozen=True)
class TextSource:
    package: str  # the Debian package that ships the text
    pattern: str  # glob of its files
    licence: str
    reader: Callable[[str], Iterator[str]]

    def available(self) -> bool:
        return bool(glob.glob(self.pattern, recursive=True))

    def documents(self) -> Iterator[str]:
        if not self.available():
            raise FileNotFoundError(
                f"corpus source needs the Debian package {self.package!r}: "
                f"apt-get install {self.package}  (no files match {self.pattern})"
            )
        return self.reader(self.pattern)


TEXT_SOURCES: dict[str, TextSource] = {
    "debian-handbook": TextSource(
        package="debian-handbook",
        pattern="/usr/share/doc/debian-handbook/html/en-US/*.html",
        licence="GPL-2+ or CC-BY-SA-3.0",
        reader=html_documents,
    ),
    "python-docs": TextSource(
        package="python3.11-doc",
        pattern="/usr/share/doc/python3.11/html/**/*.html",
        licence="PSF-2.0",
        reader=html_documents,
    ),
    "debian-reference": TextSource(
        package="debian-reference-en",
        pattern="/usr/share/debian-reference/*.en.html",
        licence="GPL-2+",
        reader=html_documents,
    ),
    "fortunes": TextSource(
        package="fortunes",
        pattern="/usr/share/games/fortunes/*",
        licence="BSD-4-clause and others (quotations)",
        reader=fortune_documents,
    ),
}
