"""A run's output folder on disk (downloaded, or made by hand in tests), as the contract lays
it out (fruits_contract.outputs), with what the Airflow side adds: the ``_SOURCE`` marker of
a downloaded copy and the report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fruits_contract import outputs

# Written by download_outputs next to a downloaded run: the S3 URI it was copied from.
SOURCE = "_SOURCE"
# The run report, beside the job's outputs (on S3 and in the local copy).
REPORT = "report"


def is_part(name: str, fmt: str) -> bool:
    """A data file of a Spark output folder, not one of its markers (``_SUCCESS``,
    ``_committed_*``) or checksums (``.crc``)."""
    base = name.rsplit("/", 1)[-1]
    return base.endswith(f".{fmt}") and not base.startswith(("_", "."))


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
        """A data set's part files in name order (Spark writes them flat in its folder)."""
        folder = self.dataset(name, fmt)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_file() and is_part(p.name, fmt))

    @property
    def success(self) -> Path:
        return self.root / outputs.SUCCESS

    @property
    def model_info(self) -> Path:
        return self.root / outputs.MODEL_INFO

    @property
    def variance_csv(self) -> Path:
        return self.root / outputs.VARIANCE_CSV

    def file(self, name: str) -> Path:
        """One file of the run, ``name`` as fruits_contract.outputs names it."""
        return self.root / name

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
    folders = [RunFolder(p.parent.parent) for p in Path(results).glob(f"**/{outputs.MODEL_INFO}")]
    return sorted(folders, key=lambda run: run.model_info.stat().st_mtime)
