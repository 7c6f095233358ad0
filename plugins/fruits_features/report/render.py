"""The report as one HTML page, from a Jinja2 template (templates/report.html.j2).

The template is autoescaped: every string that comes from the run (paths, class names, error
reasons, ids) is shown as text, because file names are user data and a page that runs them
is an attack. Plots are embedded as PNG data URIs, the CSS inline: the file opens offline.
"""

from __future__ import annotations

import base64
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from fruits_features.report.load import RunData
from fruits_features.report.metrics import VARIANCE_TARGETS, NeighbourScore, components_needed
from fruits_features.report.plots import LEGEND_MAX_CLASSES, class_style
from fruits_features.report.section import ComputeSection
from fruits_features.report.text import duration_text, integer, percent, when
from fruits_features.report.verdicts import (
    DOMINANT_PC1_SHARE,
    KNN_GOOD,
    consistency_problems,
    pc1_share,
    quality_verdict,
    status_of,
)

MARKER_GLYPHS = {"o": "●", "s": "■", "^": "▲", "D": "◆", "v": "▼", "P": "✚", "X": "✖", "*": "★"}
# Longer tables scroll inside their section instead of pushing the rest down the page.
SCROLL_ROWS = 25

Tone = namedtuple("Tone", "tone text")
Verdict = namedtuple("Verdict", "tone word")
ClassRow = namedtuple("ClassRow", "number colour glyph label selected failed")


@dataclass(frozen=True)
class Figures:
    variance: bytes | None
    pca_map: bytes | None
    stages: bytes | None


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


def render_html(
    run: RunData,
    figures: Figures,
    score: NeighbourScore | None,
    generated_at: datetime,
    compute: ComputeSection | None = None,
) -> str:
    counts = run.counts
    pc1 = pc1_share(run)
    classes = []
    for index, (label, (selected, failed)) in enumerate(run.per_class.items()):
        colour, marker = class_style(index)
        classes.append(ClassRow(index + 1, colour, MARKER_GLYPHS[marker], label, selected, failed))
    overall = [
        ("files listed", counts.get("files_listed")),
        # Runs before the skipped-files list counted only the files that were not images.
        ("files skipped", counts.get("skipped_files", counts.get("non_image_files"))),
        ("images selected", counts.get("images_selected")),
        ("images with features", counts.get("features")),
        *(
            # Runs before the feature store computed every feature.
            [
                ("of which computed by this run", counts["features_computed"]),
                ("of which reused from the feature store", counts["features_reused"]),
            ]
            if "features_reused" in counts
            else []
        ),
        ("errors", counts.get("errors")),
        ("classes", len(run.per_class)),
        ("feature rows in features/parquet", run.feature_rows),
        ("rows in pca/parquet", None if run.pca is None else len(run.pca)),
    ]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            run=run,
            info=run.info,
            counts=counts,
            errors=counts.get("errors", len(run.errors)),
            status=Tone(*status_of(run)),
            problems=consistency_problems(run),
            score=score,
            quality=Verdict(*quality_verdict(score, pc1)),
            pc1=pc1,
            figures={
                "variance": _data_uri(figures.variance),
                "pca_map": _data_uri(figures.pca_map),
                "stages": _data_uri(figures.stages),
            },
            variance_rows=[(t, components_needed(run.cumulative, t)) for t in VARIANCE_TARGETS],
            classes=classes,
            overall=overall,
            stages=run.stages,
            weights=run.info.get("weights") or {},
            versions=run.info.get("versions") or {},
            compute=compute,
            generated_at=generated_at,
            knn_good=KNN_GOOD,
            dominant_pc1=DOMINANT_PC1_SHARE,
            legend_max_classes=LEGEND_MAX_CLASSES,
            scroll_rows=SCROLL_ROWS,
        )
    )
