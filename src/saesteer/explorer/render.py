"""Rendering the explorer's pages: the Jinja2 environment of the templates in
`saesteer/templates/` (the feature pages, the index and the findings page), its filters,
and writing rendered pages to files. The templates hold all markup."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path


def number(value, digits: int = 3) -> str:
    """A table cell: a dash for missing values, floats to `digits` significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def environment():
    """The templates, HTML-escaped by default; an undefined name is an error, not blank."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("saesteer", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = number
    env.filters["rank_text"] = rank_text
    return env


def rank_text(rank: tuple[int, int, int]) -> str:
    """ "rank 3 of 32", or "tied 3–32 of 32" for a score that several features share."""
    best, worst, n = rank
    return f"rank {best} of {n}" if best == worst else f"tied {best}–{worst} of {n}"


def write_pages(pages: Iterable[tuple[str, dict]], template: str, folder: Path) -> int:
    """Render each page's values into `folder / name`; the count written."""
    page = environment().get_template(template)
    written = 0
    for path, values in pages:
        (folder / path).write_text(page.render(**values), encoding="utf-8")
        written += 1
    return written
