"""A run report people can look at (issue #5): one self-contained HTML file per run.

    from fruits_features.report import build_report
    files = build_report(Path("results/full/<run>"))      # → <run>/report/report.html

    python -m fruits_features.report RUN_FOLDER [--out DIR]

Reads a downloaded run output folder (docs/contract.md) with pyarrow and numpy only: no
Spark, nothing from spark/.
"""

from fruits_features.report.build import ReportFiles, build_report
from fruits_features.report.cost import (
    DEFAULT_HOURLY_PRICES_USD,
    CostEstimate,
    EmrRunInfo,
    InstanceGroup,
    estimate_cost,
)
from fruits_features.report.load import RunFolderError
from fruits_features.report.metrics import components_needed, loo_1nn_accuracy

__all__ = [
    "DEFAULT_HOURLY_PRICES_USD",
    "CostEstimate",
    "EmrRunInfo",
    "InstanceGroup",
    "ReportFiles",
    "RunFolderError",
    "build_report",
    "components_needed",
    "estimate_cost",
    "loo_1nn_accuracy",
]
