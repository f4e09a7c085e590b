"""Stage `findings`: the paper's findings on this run (roles by depth, the crossing, the
gain from filtering by output score), as JSON and a self-contained HTML page."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

from saesteer.aggregate.findings import findings
from saesteer.artifacts import read_artifact
from saesteer.io import atomic_path, write_json
from saesteer.report_pages import findings_html
from saesteer.stats import BootstrapSettings

log = logging.getLogger(__name__)


def run(
    *,
    run_name: Annotated[str, "the run's name (the page's title)"],
    features: Annotated[Path, "the run's features.parquet"],
    settings: BootstrapSettings,
    out_json: Annotated[Path, "findings.json"],
    out_html: Annotated[Path, "findings.html"],
) -> None:
    found = findings(read_artifact(features), settings)
    write_json(found, out_json)
    with atomic_path(out_html) as tmp:
        tmp.write_text(findings_html(found, run_name))
    log.info("findings: %s", json.dumps(found))
