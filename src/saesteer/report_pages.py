"""The report's HTML pages beside its figures: one page of every figure with its caption
under it (figures.html), and the findings with their intervals and verdicts
(findings.html, rendered with the explorer's templates)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from saesteer.aggregate.findings import LAYER_FINDINGS
from saesteer.explorer.render import environment, number


def caption_html(rst: str, layers: Sequence[int]) -> str:
    """A report caption as HTML: its Jinja (the report's `snakemake.config`, of which the
    captions read only the layers) filled in, then its reStructuredText rendered."""
    import jinja2
    from docutils.core import publish_parts

    text = jinja2.Template(rst).render(snakemake={"config": {"layers": list(layers)}})
    settings = {"report_level": 5, "halt_level": 2, "embed_stylesheet": False}
    return publish_parts(text, writer="html", settings_overrides=settings)["body"]


def figures_html(plots: Sequence[tuple[Path, str]], run: str, layers: Sequence[int]) -> str:
    """One page with every figure (PNG inlined) and its caption under it, in order: the
    report's own viewer shows a caption only behind its info button."""
    import base64
    import html

    parts = []
    for png, rst in plots:
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        parts.append(
            f'<figure id="{html.escape(Path(png).stem)}">'
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(Path(png).stem)}">'
            f"<figcaption>{caption_html(rst, layers)}</figcaption></figure>"
        )
    title = f"Figures · {html.escape(run)}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        "<style>body{font-family:system-ui,sans-serif;max-width:820px;margin:1em auto;"
        "padding:0 1em;color:#222}figure{margin:0 0 2.5em}img{max-width:100%}"
        "figcaption{font-size:.95em;line-height:1.4}</style></head><body>"
        f"<h1>{title}</h1>{''.join(parts)}</body></html>\n"
    )


def estimate_text(value, low=None, high=None, n=None) -> str:
    """'0.38 [0.12, 0.61] (n=40)': a value, its 95% interval when known, its n."""
    text = number(value)
    if low is not None and high is not None:
        text += f" [{number(low)}, {number(high)}]"
    return text if n is None else f"{text} (n={n})"


def findings_html(found: dict, run: str) -> str:
    """A self-contained page: the verdicts against the paper, one table of the findings,
    one per layer, one of the threshold filter, each number with its n and interval; its
    counts and layers link into the feature explorer beside it."""
    boot = found["bootstrap"]
    counted = (
        f"{found['n_counted']} live of {found['n_features']} ({found['n_layers']} layers; "
        f"{found['n_not_live']} fired on too few examples and are left out)"
        if found["live_only"]
        else f"{found['n_features']} ({found['n_layers']} layers), live or not"
    )
    main = [
        ("Features counted", counted),
        (
            "Fraction with input score > 0.5 and output score > 0.5",
            estimate_text(
                found["fraction_both_above_half"],
                *found["fraction_both_above_half_interval"],
                found["n_scored_both"],
            ),
        ),
        (
            "Pearson correlation, input vs output score",
            estimate_text(found["pearson_input_output"], n=found["n_scored_both"]),
        ),
        (
            "Spearman correlation, input vs output score",
            estimate_text(found["spearman_input_output"], n=found["n_scored_both"]),
        ),
        (
            "First layer whose median output score exceeds its median input score",
            number(found["first_layer_output_above_input"]),
        ),
        (
            "First layer whose mean output score exceeds its mean input score",
            number(found["first_layer_mean_output_above_input"]),
        ),
        ("Layer with the highest mean input score", number(found["peak_input_layer"])),
        ("Layer with the highest mean output score", number(found["peak_output_layer"])),
        (
            "Mean GenSuccess@20 at the best factor, steered features weighted",
            estimate_text(
                found["mean_gen_success_20"],
                *found["mean_gen_success_20_interval"],
                found["n_steered"],
            ),
        ),
        (
            "Steered features with no effective factor (GenSuccess@20 0 at every factor)",
            f"{found['n_no_effective_factor']} of {found['n_steered']}",
        ),
        (
            "Spearman correlation, output score vs GenSuccess@20 (steered features)",
            estimate_text(**found["spearman_output_gen_success"]),
        ),
    ]
    return (
        environment()
        .get_template("findings.html.j2")
        .render(
            run=run,
            main=main,
            boot=boot,
            verdicts=found["verdicts"],
            estimate=estimate_text,
            layers=found["layers"],
            layer_keys=LAYER_FINDINGS,
            thresholds=found["thresholds"],
        )
    )
