"""Whether a run's outputs hold what the contract and the plan promise: a downloaded run
folder checked against docs/contract.md (fruits_contract.outputs), every problem listed."""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fruits_contract import outputs as layout
from fruits_contract.engines import FEATURE_DIM
from fruits_features.output_layout import RunFolder


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


def parquet_vector_stats(parts: list[Path], column: str) -> tuple[int, set[int], int]:
    """Rows, set of list lengths and null vectors of a list column, read batch by batch."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows, lengths, nulls = 0, set(), 0
    for path in parts:
        for batch in pq.ParquetFile(path).iter_batches(columns=[column], batch_size=8192):
            values = batch.column(0)
            rows += len(values)
            nulls += values.null_count
            sizes = pc.list_value_length(values).drop_null()
            if len(sizes):
                lengths.update(int(v) for v in pc.unique(sizes).to_pylist())
    return rows, lengths, nulls


def parquet_value_counts(parts: list[Path], column: str) -> Counter[str]:
    import pyarrow.parquet as pq

    counts: Counter[str] = Counter()
    for path in parts:
        for batch in pq.ParquetFile(path).iter_batches(columns=[column]):
            counts.update(batch.column(0).to_pylist())
    return counts


def csv_rows(paths: list[Path]) -> tuple[int, list[list[str]], list[str]]:
    """Data rows of CSV files (a Spark CSV folder has a header in each part), their distinct
    headers, and the problems a standard (RFC 4180) reader finds: rows not as wide as the
    header, text it cannot parse."""
    rows, headers, problems = 0, [], []
    for path in paths:
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle, strict=True)
                header = next(reader, None)
                if header is None:  # Spark may leave an empty part for an empty partition
                    continue
                if header not in headers:
                    headers.append(header)
                for row in reader:
                    rows += 1
                    if len(row) != len(header):
                        problems.append(
                            f"{path.name} line {reader.line_num}: {len(row)} fields under a "
                            f"{len(header)}-field header"
                        )
                        break
        except (csv.Error, UnicodeDecodeError) as error:
            problems.append(f"{path.name}: not standard CSV ({error})")
    return rows, headers, problems


@dataclass(frozen=True)
class FeaturesSeen:
    """What validation knows of a run's features/: read whole from the downloaded folder,
    or from the part ends on S3 when they were not downloaded (remote_features)."""

    rows: int  # of features/parquet
    lengths: set[int]  # distinct vector lengths
    nulls: int  # null vectors
    csv_rows: int | None  # None: not counted (not downloaded)
    csv_headers: list[list[str]]
    problems: list[str] = field(default_factory=list)


def features_in_folder(folder: RunFolder) -> FeaturesSeen:
    rows, lengths, nulls = parquet_vector_stats(
        folder.parts(layout.FEATURES, layout.PARQUET), layout.VECTOR_COLUMN[layout.FEATURES]
    )
    csv_count, headers, unreadable = csv_rows(folder.parts(layout.FEATURES, layout.CSV))
    problems = [f"{layout.FEATURES}/csv: {p}" for p in unreadable]
    return FeaturesSeen(rows, lengths, nulls, csv_count, headers, problems)


def _feature_problems(seen: FeaturesSeen, n_features: int) -> list[str]:
    problems = list(seen.problems)
    if seen.rows != n_features:
        problems.append(f"features/parquet has {seen.rows} rows, counts.features is {n_features}")
    if seen.nulls or (seen.rows and seen.lengths != {FEATURE_DIM}):
        problems.append(
            f"feature vector sizes {sorted(seen.lengths)} ({seen.nulls} null), expected 1280"
        )
    problems += _csv_problems(
        layout.FEATURES, seen.csv_rows, seen.csv_headers, layout.feature_columns(), n_features
    )
    return problems


def _csv_problems(
    name: str, rows: int | None, headers: list[list[str]], header: list[str], n_features: int
) -> list[str]:
    """A CSV data set's row count (None: not counted) and part headers against the run's."""
    counted = rows is None or rows == n_features
    headers_ok = all(h == header for h in headers) and (headers or not n_features)
    if counted and headers_ok:
        return []
    widths = [len(h) for h in headers]
    return [f"{name}/csv: {rows} rows, header widths {widths}, {len(header)} wanted"]


@dataclass(frozen=True)
class Counts:
    """What model_info.json says the run holds."""

    selected: int
    features: int
    errors: int
    skipped: int
    k: int

    @classmethod
    def of(cls, info: dict[str, Any]) -> Counts:
        counts = info.get("counts") or {}
        try:
            return cls(
                selected=int(counts["images_selected"]),
                features=int(counts["features"]),
                errors=int(counts["errors"]),
                skipped=int(counts.get("skipped_files", 0)),
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


def _pca_problems(folder: RunFolder, counts: Counts) -> list[str]:
    problems = []
    parquet = folder.parts(layout.PCA, layout.PARQUET)
    rows, lengths, nulls = parquet_vector_stats(parquet, layout.VECTOR_COLUMN[layout.PCA])
    if rows != counts.features:
        problems.append(f"pca/parquet has {rows} rows, counts.features is {counts.features}")
    if nulls or (rows and lengths != {counts.k}):
        problems.append(f"PCA vector sizes {sorted(lengths)} ({nulls} null), expected {counts.k}")
    rows, headers, unreadable = csv_rows(folder.parts(layout.PCA, layout.CSV))
    problems += [f"{layout.PCA}/csv: {p}" for p in unreadable]
    header = layout.pca_columns(counts.k)
    return problems + _csv_problems(layout.PCA, rows, headers, header, counts.features)


def _metadata_problems(folder: RunFolder, counts: Counts) -> list[str]:
    problems = []
    statuses = parquet_value_counts(folder.parts(layout.METADATA, layout.PARQUET), "status")
    if sum(statuses.values()) != counts.selected or statuses.get("error", 0) != counts.errors:
        problems.append(f"metadata/parquet statuses {dict(statuses)} vs {counts.selected} selected")
    rows, _, unreadable = csv_rows(folder.parts(layout.METADATA, layout.CSV))
    problems += [f"metadata/csv: {p}" for p in unreadable]
    if rows != counts.selected:
        problems.append(f"metadata/csv has {rows} rows for {counts.selected} images selected")
    return problems


def _file_problems(folder: RunFolder, counts: Counts) -> list[str]:
    """errors.csv, skipped.csv and variance.csv against the counts."""
    problems = []
    for path, name, columns, count, what in (
        (folder.errors_csv, layout.ERRORS_CSV, layout.ERROR_COLUMNS, counts.errors, "errors"),
        (
            folder.skipped_csv,
            layout.SKIPPED_CSV,
            layout.SKIPPED_COLUMNS,
            counts.skipped,
            "skipped",
        ),
    ):
        if not path.is_file():
            problems.append(f"{name} missing")
            continue
        rows, headers, unreadable = csv_rows([path])
        problems += [f"{name}: {p}" for p in unreadable]
        if rows != count:
            problems.append(f"{name} has {rows} rows, model_info counts {count} {what}")
        if headers and tuple(headers[0]) != columns:
            problems.append(f"{name} header {headers[0]}")
    variance = csv_rows([folder.variance_csv]) if folder.variance_csv.is_file() else None
    if variance is None or variance[0] != counts.k or variance[2]:
        problems.append(f"{layout.VARIANCE_CSV} missing, unreadable or not {counts.k} rows")
    return problems


def _format_problems(folder: RunFolder, counts: Counts, check_features: bool) -> list[str]:
    """Every data set with rows, in every output format: part files present."""
    rows = {layout.FEATURES: counts.features, layout.PCA: counts.features}
    names = [name for name in layout.DATASETS if check_features or name != layout.FEATURES]
    return [
        f"{name}/{fmt}: no part file"
        for name in names
        for fmt in layout.FORMATS
        if rows.get(name, counts.selected) and not folder.parts(name, fmt)
    ]


def validate_output_folder(
    path: Path,
    expected: Expected,
    features: FeaturesSeen | None = None,
    check_features: bool = True,
) -> OutputReport:
    """Check a run folder against docs/contract.md; raise listing every problem.

    ``features``: what is known of features/ when it was left on S3 (else read from disk);
    ``check_features=False``: features/ is not checked at all (a summary copy, checked on S3
    by validate_outputs when it was downloaded).
    """
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
    if check_features:
        seen = features if features is not None else features_in_folder(folder)
        problems += _feature_problems(seen, counts.features)
    problems += _pca_problems(folder, counts)
    problems += _metadata_problems(folder, counts)
    problems += _format_problems(folder, counts, check_features and features is None)
    problems += _file_problems(folder, counts)
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
