"""build_report: a run output folder in, report.html + PNGs + report.json out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from fruits_features.report.cost import DEFAULT_HOURLY_PRICES_USD, EmrRunInfo, estimate_cost
from fruits_features.report.load import load_run
from fruits_features.report.metrics import (
    VARIANCE_TARGETS,
    NeighbourScore,
    components_needed,
    loo_1nn_accuracy,
)
from fruits_features.report.plots import pca_map, stage_plot, variance_plot
from fruits_features.report.render import Figures, quality_verdict, render_html, status_of


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
    emr: EmrRunInfo | None = None,
    hourly_prices_usd: Mapping[str, float] | None = None,
    input_uri: str | None = None,
) -> ReportFiles:
    """Write the report of the run downloaded to ``run_folder`` (layout: docs/contract.md).

    :param run_folder: a run output folder; only model_info/model_info.json is required.
    :param out_dir: where to write; default ``run_folder/report/``.
    :param emr: the cluster of an EMR run, for the cluster section and the cost estimate.
    :param hourly_prices_usd: instance type → USD per hour (EC2 + EMR); default
        DEFAULT_HOURLY_PRICES_USD (an estimate for eu-west-1).
    :param input_uri: where the run's input came from, when the job read a staged copy
        (local compute); default: the job's own record.
    """
    run_folder = Path(run_folder)
    out_dir = run_folder / "report" if out_dir is None else Path(out_dir)
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
    emr_section = None
    cost = None
    if emr is not None:
        prices = DEFAULT_HOURLY_PRICES_USD if hourly_prices_usd is None else hourly_prices_usd
        cost = estimate_cost(emr, prices, now=generated_at)
        emr_section = (emr, cost, prices)

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
    html_path.write_text(
        render_html(run, figures, score, generated_at, emr_section), encoding="utf-8"
    )
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
        "pc1_share": run.explained[0] if run.explained else None,
        "quality": quality_verdict(score, run.explained[0] if run.explained else None)[1],
        "emr": (
            {"cluster_id": emr.cluster_id, **asdict(cost)} if emr is not None and cost else None
        ),
        "generated_at": generated_at.isoformat(),
    }
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return ReportFiles(html=html_path, plots=tuple(plots), summary=summary_path)
