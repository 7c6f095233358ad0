"""The report as one HTML page, from a Jinja2 template (templates/report.html.j2).

The template is autoescaped: every string that comes from the run (paths, class names, error
reasons, ids) is shown as text, because file names are user data and a page that runs them
is an attack. Plots are embedded as PNG data URIs, the CSS inline: the file opens offline.
"""

from __future__ import annotations

import base64
from collections import namedtuple
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from fruits_features.compute.facts import ComputeFacts, Fact
from fruits_features.report.model import RunReport
from fruits_features.report.plots import LEGEND_MAX_CLASSES, Figures
from fruits_features.report.style import MARKER_GLYPHS
from fruits_features.report.text import duration_text, integer, percent, when
from fruits_features.report.verdicts import DOMINANT_PC1_SHARE, KNN_GOOD

# Longer tables scroll inside their section instead of pushing the rest down the page.
SCROLL_ROWS = 25

Tone = namedtuple("Tone", "tone text")
Verdict = namedtuple("Verdict", "tone word")
ClassLine = namedtuple("ClassLine", "number colour glyph label selected failed")
# A compute fact as the page shows it: text, and a style ("", code, strong, warn).
Shown = namedtuple("Shown", "text style")
ShownSection = namedtuple("ShownSection", "key title facts head rows numeric note")
NUMERIC_KINDS = ("count", "usd", "total_usd", "seconds")


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["j2", "html"], default_for_string=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.globals.update(integer=integer, percent=percent, duration=duration_text, when=when)
    return environment


def _data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def shown(fact: Fact) -> Shown:
    """How the page writes a compute fact."""
    value, kind = fact.value, fact.kind
    if kind == "id":
        text, style = str(value), "code"
    elif kind == "count":
        text, style = integer(value), ""
    elif kind in ("usd", "total_usd"):
        digits = 2 if kind == "total_usd" else 3
        text, style = f"${value:,.{digits}f}", "strong" if kind == "total_usd" else ""
    elif kind == "seconds":
        text, style = duration_text(value), ""
    elif kind == "moment":
        text, style = when(value), ""
    else:
        text, style = str(value), "warn" if kind == "missing" else ""
    return Shown(f"{text} {fact.note}" if fact.note else text, style)


def _section(compute: ComputeFacts | None) -> ShownSection | None:
    if compute is None:
        return None
    numeric = tuple(
        i
        for i in range(len(compute.head))
        if any(row[i].kind in NUMERIC_KINDS for row in compute.rows)
    )
    return ShownSection(
        key=compute.key,
        title=compute.title,
        facts=[(label, shown(fact)) for label, fact in compute.facts],
        head=compute.head,
        rows=[[shown(fact) for fact in row] for row in compute.rows],
        numeric=numeric,
        note=compute.note,
    )


def render_html(report: RunReport, figures: Figures) -> str:
    run = report.run
    classes = [
        ClassLine(c.number, c.colour, MARKER_GLYPHS[c.marker], c.label, c.selected, c.failed)
        for c in report.classes
    ]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            run=run,
            info=run.info,
            counts=run.counts,
            errors=run.counts.get("errors", 0),
            skipped=run.counts.get("skipped_files", 0),
            status=Tone(*report.status),
            problems=report.problems,
            score=report.score,
            quality=Verdict(*report.quality),
            pc1=report.pc1,
            figures={
                "variance": _data_uri(figures.variance),
                "pca_map": _data_uri(figures.pca_map),
                "stages": _data_uri(figures.stages),
            },
            variance_rows=report.variance_rows,
            classes=classes,
            overall=report.overall,
            stages=run.stages,
            weights=run.info.get("weights") or {},
            versions=run.info.get("versions") or {},
            compute=_section(report.compute),
            generated_at=report.generated_at,
            knn_good=KNN_GOOD,
            dominant_pc1=DOMINANT_PC1_SHARE,
            legend_max_classes=LEGEND_MAX_CLASSES,
            scroll_rows=SCROLL_ROWS,
        )
    )
