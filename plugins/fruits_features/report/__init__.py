"""A run report people can look at: one self-contained HTML file per run.

    from fruits_features.report import build_report
    files = build_report(Path("results/full/<run>"))      # → <run>/report/report.html

    python -m fruits_features.report RUN_FOLDER [--out DIR]

Reads a downloaded run output folder (docs/contract.md) with pyarrow and numpy only: no
Spark, nothing from spark/. ``model.derive`` computes every figure once; the plots, the page
and report.json read that model. A compute backend may add what it knows of the run
(``compute.facts.ComputeFacts``).
"""

from fruits_features.report.build import ReportFiles, build_report
from fruits_features.report.load import RunFolderError
from fruits_features.report.metrics import components_needed, loo_1nn_accuracy

__all__ = [
    "ReportFiles",
    "RunFolderError",
    "build_report",
    "components_needed",
    "loo_1nn_accuracy",
]
