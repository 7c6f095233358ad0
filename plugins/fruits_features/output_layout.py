"""A run's output folder as docs/contract.md lays it out: paths, file names, columns.

The one place the Airflow side names what the job writes; the checks, the report, the
summary, the tasks and the tests' hand-made run folders all go through it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FEATURE_DIM = 1280

# Written last by the job: the run is complete.
SUCCESS = "_SUCCESS"
# Written by download_outputs next to a downloaded run: the S3 URI it was copied from.
SOURCE = "_SOURCE"

FEATURES = "features"
PCA = "pca"
METADATA = "metadata"
PARQUET, CSV = "parquet", "csv"
ERRORS_CSV = "errors/errors.csv"
SKIPPED_CSV = "errors/skipped.csv"
MODEL_INFO = "model_info/model_info.json"
VARIANCE_CSV = "model_info/variance.csv"
REPORT = "report"

KEY_COLUMNS = ("path", "label")
ERROR_COLUMNS = ("path", "label", "bytes", "reason")
SKIPPED_COLUMNS = ERROR_COLUMNS
METADATA_COLUMNS = ("path", "label", "bytes", "status")
VARIANCE_COLUMNS = ("component", "explained_variance", "cumulative_variance")
# The vector column of each Parquet data set.
VECTOR_COLUMN = {FEATURES: "features", PCA: "pca"}


def feature_columns() -> list[str]:
    """CSV header of features/csv."""
    return [*KEY_COLUMNS, *(f"f{i:04d}" for i in range(FEATURE_DIM))]


def pca_columns(k: int) -> list[str]:
    """CSV header of pca/csv."""
    return [*KEY_COLUMNS, *(f"pc{i:03d}" for i in range(1, k + 1))]


@dataclass(frozen=True)
class RunFolder:
    """A run output folder on disk (downloaded, or written by hand in tests)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def dataset(self, name: str, fmt: str) -> Path:
        """The folder of a data set: ``features``/``pca``/``metadata`` × ``parquet``/``csv``."""
        return self.root / name / fmt

    def parts(self, name: str, fmt: str) -> list[Path]:
        """A data set's part files in name order.

        Spark writes them flat in the data set's folder, next to its own markers
        (``_SUCCESS``, ``_committed_*``) and checksums (``.crc``), which are not data.
        """
        folder = self.dataset(name, fmt)
        if not folder.is_dir():
            return []
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.name.endswith(f".{fmt}") and not p.name.startswith(("_", "."))
        )

    @property
    def success(self) -> Path:
        return self.root / SUCCESS

    @property
    def model_info(self) -> Path:
        return self.root / MODEL_INFO

    @property
    def variance_csv(self) -> Path:
        return self.root / VARIANCE_CSV

    @property
    def errors_csv(self) -> Path:
        return self.root / ERRORS_CSV

    @property
    def skipped_csv(self) -> Path:
        return self.root / SKIPPED_CSV

    @property
    def source_marker(self) -> Path:
        return self.root / SOURCE

    @property
    def report_dir(self) -> Path:
        return self.root / REPORT

    def is_run(self) -> bool:
        return self.model_info.is_file()

    def read_model_info(self) -> dict[str, Any]:
        return json.loads(self.model_info.read_text(encoding="utf-8"))

    def downloaded_from(self) -> str | None:
        """The S3 URI the folder was copied from (None: not downloaded by the DAG)."""
        marker = self.source_marker
        return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None


def find_runs(results: Path) -> list[RunFolder]:
    """Every run folder under ``results``, oldest first."""
    folders = [RunFolder(p.parent.parent) for p in Path(results).glob(f"**/{MODEL_INFO}")]
    return sorted(folders, key=lambda run: run.model_info.stat().st_mtime)
