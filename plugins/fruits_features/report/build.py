"""build_report: a run output folder in, report.html + PNGs + report.json out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fruits_features.compute.facts import ComputeFacts
from fruits_features.output_layout import RunFolder
from fruits_features.report.load import load_run
from fruits_features.report.model import derive
from fruits_features.report.plots import figures
from fruits_features.report.render import render_html
from fruits_features.s3_layout import REPORT_PAGE


@dataclass(frozen=True)
class ReportFiles:
    """What build_report wrote, all inside ``out_dir``."""

    html: Path  # report.html: the whole report in one file
    plots: tuple[Path, ...]  # the same figures as separate PNG files
    summary: Path  # report.json: the computed figures, for machines (XCom, tests)

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.html, *self.plots, self.summary)


def build_report(
    run_folder: Path,
    out_dir: Path | None = None,
    *,
    compute: ComputeFacts | None = None,
    input_uri: str | None = None,
) -> ReportFiles:
    """Write the report of the run downloaded to ``run_folder`` (layout: docs/contract.md).

    :param run_folder: a run output folder; only model_info/model_info.json is required.
    :param out_dir: where to write; default ``run_folder/report/``.
    :param compute: what the compute backend tells of the run (EMR: the cluster and its cost).
    :param input_uri: where the run's input came from, when the job read a staged copy
        (local compute); default: the job's own record.
    """
    run_folder = Path(run_folder)
    out_dir = RunFolder(run_folder).report_dir if out_dir is None else Path(out_dir)
    run = load_run(run_folder)
    if input_uri:
        run.input_uri = input_uri
    report = derive(run, compute, generated_at=datetime.now(tz=UTC))
    drawn = figures(report)

    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    for name, png in (
        ("explained_variance.png", drawn.variance),
        ("pca_map.png", drawn.pca_map),
        ("stages.png", drawn.stages),
    ):
        if png is not None:
            (out_dir / name).write_bytes(png)
            plots.append(out_dir / name)
    html_path = out_dir / REPORT_PAGE
    html_path.write_text(render_html(report, drawn), encoding="utf-8")
    summary_path = out_dir / "report.json"
    summary_path.write_text(json.dumps(report.summary(), indent=2) + "\n")
    return ReportFiles(html=html_path, plots=tuple(plots), summary=summary_path)
