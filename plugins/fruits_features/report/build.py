"""build_report: a run output folder in, report.html + PNGs + report.json out."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from fruits_features.output_layout import RunFolder
from fruits_features.report.load import load_run
from fruits_features.report.metrics import (
    VARIANCE_TARGETS,
    NeighbourScore,
    components_needed,
    loo_1nn_accuracy,
)
from fruits_features.report.plots import pca_map, stage_plot, variance_plot
from fruits_features.report.render import Figures, render_html
from fruits_features.report.section import ComputeSection
from fruits_features.report.verdicts import pc1_share, quality_verdict, status_of


@dataclass(frozen=True)
class ReportFiles:
    """What build_report wrote, all inside ``out_dir``."""

    html: Path  # report.html: the whole report in one file
    plots: tuple[Path, ...]  # the same figures as separate PNG files
    summary: Path  # report.json: the computed figures, for machines (XCom, tests)

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.html, *self.plots, self.summary)


def _score(pca, labels) -> NeighbourScore | None:
    if pca is None or len(pca) < 2 or len(set(labels.tolist())) < 2:
        return None
    return loo_1nn_accuracy(pca, labels)


def build_report(
    run_folder: Path,
    out_dir: Path | None = None,
    *,
    compute: ComputeSection | None = None,
    input_uri: str | None = None,
) -> ReportFiles:
    """Write the report of the run downloaded to ``run_folder`` (layout: docs/contract.md).

    :param run_folder: a run output folder; only model_info/model_info.json is required.
    :param out_dir: where to write; default ``run_folder/report/``.
    :param compute: what the compute backend adds (EMR: the cluster and its cost).
    :param input_uri: where the run's input came from, when the job read a staged copy
        (local compute); default: the job's own record.
    """
    run_folder = Path(run_folder)
    out_dir = RunFolder(run_folder).report_dir if out_dir is None else Path(out_dir)
    run = load_run(run_folder)
    if input_uri:
        run.input_uri = input_uri
    score = _score(run.pca, run.pca_labels)
    figures = Figures(
        variance=variance_plot(run.explained, run.cumulative) if run.explained else None,
        pca_map=(
            pca_map(run.pca, run.pca_labels, list(run.per_class))
            if run.pca is not None and run.pca.shape[1] >= 1
            else None
        ),
        stages=stage_plot(run.stages) if run.stages else None,
    )
    generated_at = datetime.now(tz=UTC)

    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    for name, png in (
        ("explained_variance.png", figures.variance),
        ("pca_map.png", figures.pca_map),
        ("stages.png", figures.stages),
    ):
        if png is not None:
            (out_dir / name).write_bytes(png)
            plots.append(out_dir / name)
    html_path = out_dir / "report.html"
    html_path.write_text(render_html(run, figures, score, generated_at, compute), encoding="utf-8")
    summary_path = out_dir / "report.json"
    summary = {
        "run_id": run.info.get("run_id"),
        "status": status_of(run)[1],
        "counts": run.counts,
        "classes": len(run.per_class),
        "errors_listed": len(run.errors),
        "variance_at_k": run.cumulative[-1] if run.cumulative else None,
        "components_needed": {
            f"{t:.0%}": components_needed(run.cumulative, t) for t in VARIANCE_TARGETS
        },
        "knn": asdict(score) if score else None,
        "pc1_share": pc1_share(run),
        "quality": quality_verdict(score, pc1_share(run))[1],
        "generated_at": generated_at.isoformat(),
    }
    if compute is not None:
        summary[compute.key] = dict(compute.summary)
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return ReportFiles(html=html_path, plots=tuple(plots), summary=summary_path)
