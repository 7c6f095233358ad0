"""Whether a run's outputs hold what the contract and the plan promise (docs/contract.md,
fruits_contract.outputs), every problem listed: its record and summary (downloaded) against
the plan and each other, its data sets (output_facts: their part files' ends) against the
record's counts. What is read is bounded whatever the bank's size."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fruits_contract import outputs as layout
from fruits_contract.engines import FEATURE_DIM
from fruits_features.output_facts import DatasetFacts
from fruits_features.output_layout import RunFolder, is_part


class OutputValidationError(ValueError):
    """A run's output folder breaks the contract; the message lists every problem found."""


@dataclass(frozen=True)
class Expected:
    """What the DAG asked for; the outputs must say the same."""

    mode: str
    pca_components: int
    images_selected: int | None = None
    run_id: str | None = None
    # The files check_inputs found it must skip: the job must report the same number.
    skipped_files: int | None = None


@dataclass
class OutputReport:
    images_selected: int
    features: int
    errors: int
    pca_components: int
    variance_kept: float
    duration_seconds: float
    images_per_second: float | None

    def summary(self) -> str:
        rate = "n/a" if self.images_per_second is None else f"{self.images_per_second:.1f}"
        return (
            f"images {self.images_selected}, errors {self.errors}, features {self.features}, "
            f"K {self.pca_components}, variance kept {self.variance_kept:.1%}, "
            f"{rate} images/s over {self.duration_seconds:.0f} s"
        )

    def as_xcom(self) -> dict[str, Any]:
        """What publish_pca adds to the asset event."""
        return {
            "images": self.images_selected,
            "errors": self.errors,
            "features": self.features,
            "variance_kept": self.variance_kept,
            "images_per_second": self.images_per_second,
            "duration_seconds": self.duration_seconds,
        }


@dataclass(frozen=True)
class Counts:
    """What model_info.json says the run holds."""

    selected: int
    features: int
    errors: int
    skipped: int
    listed: int
    k: int

    @classmethod
    def of(cls, info: dict[str, Any]) -> Counts:
        counts = info.get("counts") or {}
        try:
            return cls(
                selected=int(counts["images_selected"]),
                features=int(counts["features"]),
                errors=int(counts["errors"]),
                skipped=int(counts["skipped_files"]),
                listed=int(counts["files_listed"]),
                k=int(info["pca_components"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise OutputValidationError(f"model_info.json lacks a count: {error!r}") from None


def _model_info_problems(info: dict[str, Any], counts: Counts, expected: Expected) -> list[str]:
    """model_info against the request and against itself."""
    problems = []
    k, selected = counts.k, counts.selected
    if info.get("mode") != expected.mode:
        problems.append(f"mode {info.get('mode')!r} != requested {expected.mode!r}")
    if k != expected.pca_components:
        problems.append(f"pca_components {k} != requested {expected.pca_components}")
    if expected.run_id is not None and info.get("run_id") != expected.run_id:
        problems.append(f"run_id {info.get('run_id')!r} != {expected.run_id!r}")
    if expected.images_selected is not None and selected != expected.images_selected:
        problems.append(f"images_selected {selected} != planned {expected.images_selected}")
    if expected.skipped_files is not None and counts.skipped != expected.skipped_files:
        problems.append(f"skipped_files {counts.skipped} != {expected.skipped_files} found on S3")
    if info.get("feature_dim") != FEATURE_DIM:
        problems.append(f"feature_dim {info.get('feature_dim')!r} != {FEATURE_DIM}")
    if counts.features != selected - counts.errors:
        problems.append(
            f"counts.features {counts.features} != images_selected {selected} - errors "
            f"{counts.errors}"
        )
    if counts.features < 1:
        problems.append("no image was processed")
    return problems + _variance_problems(info, k)


def _variance_problems(info: dict[str, Any], k: int) -> list[str]:
    problems = []
    explained = info.get("explained_variance") or []
    cumulative = info.get("cumulative_variance") or []
    if len(explained) != k or len(cumulative) != k:
        problems.append(
            f"{len(explained)} explained / {len(cumulative)} cumulative variances for K={k}"
        )
    variance_kept = float(info.get("variance_kept") or 0.0)
    if cumulative and not math.isclose(variance_kept, float(cumulative[-1]), abs_tol=1e-6):
        problems.append(f"variance_kept {variance_kept} != last cumulative {cumulative[-1]}")
    if not 0.0 < variance_kept <= 1.0 + 1e-6:
        problems.append(f"variance_kept {variance_kept} outside (0, 1]")
    return problems


def _csv_problems(facts: DatasetFacts, header: list[str], rows: int) -> list[str]:
    """A data set's CSV: parts when it has rows, every header the contract's, and as many
    rows as the counts say (where the parts were counted)."""
    problems = []
    if rows and not facts.csv_parts:
        problems.append(f"{facts.name}/csv: no part file")
    wrong = [h for h in facts.csv_headers if h != header]
    if wrong:
        problems.append(
            f"{facts.name}/csv: header of {len(wrong[0])} fields, {len(header)} wanted "
            f"({', '.join(header[:3])}, ...)"
        )
    if facts.csv_rows is not None and facts.csv_rows != rows:
        problems.append(f"{facts.name}/csv has {facts.csv_rows} rows, {rows} expected")
    return problems


def dataset_problems(
    facts: DatasetFacts, rows: int, header: list[str] | None, width: int | None = None
) -> list[str]:
    """One data set against the counts: its Parquet rows, its vectors ``width`` long and
    none null (as far as footers tell: values = rows x width, no null value), its CSV."""
    name = facts.name
    problems = list(facts.problems)
    if rows and not facts.parquet_parts:
        problems.append(f"{name}/parquet: no part file")
    if facts.rows != rows:
        problems.append(f"{name}/parquet has {facts.rows} rows, {rows} expected")
    if width is not None and (facts.vector_nulls or facts.vector_values != facts.rows * width):
        problems.append(
            f"{name}/parquet: {facts.vector_values} vector values ({facts.vector_nulls} null) "
            f"for {facts.rows} rows, not {width} each"
        )
    if header is not None:
        problems += _csv_problems(facts, header, rows)
    return problems


def _datasets_problems(facts: dict[str, DatasetFacts], counts: Counts, exported: bool) -> list[str]:
    """Every data set against model_info's counts."""
    k = counts.k
    problems = dataset_problems(facts[layout.PCA], counts.features, layout.pca_columns(k), k)
    metadata = list(layout.METADATA_COLUMNS)
    problems += dataset_problems(facts[layout.METADATA], counts.selected, metadata)
    problems += dataset_problems(facts[layout.ERRORS], counts.errors, list(layout.ERROR_COLUMNS))
    problems += dataset_problems(
        facts[layout.SKIPPED], counts.skipped, list(layout.SKIPPED_COLUMNS)
    )
    problems += dataset_problems(facts[layout.LISTING], counts.listed, None)
    features = facts[layout.FEATURES]
    if exported:
        problems += dataset_problems(
            features, counts.features, layout.feature_columns(), FEATURE_DIM
        )
    elif features.parquet_parts or features.csv_parts:
        problems.append("features/ written, but model_info says the features were not exported")
    return problems


def _summary_problems(folder: RunFolder, counts: Counts) -> list[str]:
    """summary/ and variance.csv against the counts."""
    problems = []
    classes = read_csv(folder.file(layout.SUMMARY_CLASSES))
    if classes is None or classes[0] != list(layout.CLASS_COLUMNS):
        problems.append(f"{layout.SUMMARY_CLASSES} missing or not {layout.CLASS_COLUMNS}")
    else:
        images = sum(int(row[1]) for row in classes[1:])
        errors = sum(int(row[2]) for row in classes[1:])
        if (images, errors) != (counts.selected, counts.errors):
            problems.append(
                f"{layout.SUMMARY_CLASSES} counts {images} images, {errors} errors; "
                f"model_info {counts.selected}, {counts.errors}"
            )
    for name, count in (
        (layout.SUMMARY_ERRORS, counts.errors),
        (layout.SUMMARY_SKIPPED, counts.skipped),
    ):
        rows = read_csv(folder.file(name))
        if rows is None or rows[0] != list(layout.ERROR_COLUMNS):
            problems.append(f"{name} missing or not {layout.ERROR_COLUMNS}")
        elif len(rows) - 1 != min(count, layout.SAMPLE_ROWS):
            problems.append(f"{name} has {len(rows) - 1} rows for {count} files")
    sample = pca_sample_rows(folder)
    if sample != min(counts.features, layout.PCA_SAMPLE_ROWS):
        problems.append(f"{layout.SUMMARY_PCA_SAMPLE} has {sample} rows")
    variance = read_csv(folder.file(layout.VARIANCE_CSV))
    if variance is None or len(variance) - 1 != counts.k:
        problems.append(f"{layout.VARIANCE_CSV} missing, unreadable or not {counts.k} rows")
    return problems


def read_csv(path: Path) -> list[list[str]] | None:
    """A small CSV file's rows, header first (None: missing or not standard CSV)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.reader(handle, strict=True)) or None
    except (OSError, csv.Error, UnicodeDecodeError):
        return None


def pca_sample_rows(folder: RunFolder) -> int:
    import pyarrow.parquet as pq

    parts = sorted(folder.file(layout.SUMMARY_PCA_SAMPLE).glob("*.parquet"))
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts if is_part(p.name, "parquet"))


def validate_run(
    path: Path, expected: Expected, facts: dict[str, DatasetFacts] | None
) -> OutputReport:
    """Check a run against docs/contract.md, raise listing every problem: its record and
    summary in the folder ``path`` (a download), its data sets as ``facts`` say (read on
    S3 or in the folder; None: not checked)."""
    folder = RunFolder(path)
    problems: list[str] = []
    if not folder.success.is_file():
        problems.append("_SUCCESS missing: the job did not finish")
    try:
        info: dict[str, Any] = folder.read_model_info()
    except (OSError, ValueError) as error:
        raise OutputValidationError(
            "; ".join([*problems, f"model_info.json unreadable: {error}"])
        ) from None
    counts = Counts.of(info)
    problems += _model_info_problems(info, counts, expected)
    problems += _summary_problems(folder, counts)
    if facts is not None:
        problems += _datasets_problems(facts, counts, bool(info.get("features_exported")))
    if problems:
        raise OutputValidationError("; ".join(problems))
    duration = float(info.get("duration_seconds") or 0.0)
    return OutputReport(
        images_selected=counts.selected,
        features=counts.features,
        errors=counts.errors,
        pca_components=counts.k,
        variance_kept=float(info.get("variance_kept") or 0.0),
        duration_seconds=duration,
        images_per_second=counts.selected / duration if duration > 0 else None,
    )
