"""Input checks (on S3 key listings) and output validation (on a downloaded run folder). Pure."""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fruits_features import output_layout as layout
from fruits_features.config import PipelineConfig
from fruits_features.input_rule import classify
from fruits_features.modes import MODES
from fruits_features.output_layout import FEATURE_DIM, RunFolder
from fruits_features.s3_layout import training_relative


class InputCheckError(ValueError):
    """The input data cannot make a run of the requested mode."""


class OutputValidationError(ValueError):
    """A run's output folder breaks the contract; the message lists every problem found."""


@dataclass(frozen=True)
class InputSummary:
    images: int
    classes: dict[str, int] = field(default_factory=dict)
    # The files the run will not process: (key, label, bytes, reason), by the input rule.
    skipped: list[tuple[str, str, int, str]] = field(default_factory=list)


def summarize_inputs(
    objects: Iterable[Mapping[str, Any]], config: PipelineConfig, mode: str
) -> InputSummary:
    """The images a mode can select among listed S3 objects, and the files the run skips."""
    per_class: Counter[str] = Counter()
    skipped = []
    for obj in objects:
        key = obj["Key"]
        relative = training_relative(key, config.storage.input_prefix)
        if relative is None:
            continue
        label, reason = classify(relative)
        if reason is not None:
            skipped.append((key, label or "", int(obj.get("Size", 0)), reason))
        elif MODES[mode].selects(label):
            per_class[label] += 1
    return InputSummary(
        images=sum(per_class.values()),
        classes=dict(sorted(per_class.items())),
        skipped=sorted(skipped),
    )


def too_few_images(images: int, k: int) -> str | None:
    """What the job refuses before building a model, in its words (spark/fruits_job/job.py)."""
    if images < 2:
        return f"a PCA needs at least 2 images; this run would process {images}"
    if k > images:
        return f"--pca-components {k} is more than the {images} images this run would process"
    return None


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

    counts = info.get("counts") or {}
    try:
        selected = int(counts["images_selected"])
        n_features = int(counts["features"])
        n_errors = int(counts["errors"])
        n_skipped = int(counts.get("skipped_files", 0))
        k = int(info["pca_components"])
    except (KeyError, TypeError, ValueError) as error:
        raise OutputValidationError(f"model_info.json lacks a count: {error!r}") from None

    # model_info against the request and against itself.
    if info.get("mode") != expected.mode:
        problems.append(f"mode {info.get('mode')!r} != requested {expected.mode!r}")
    if k != expected.pca_components:
        problems.append(f"pca_components {k} != requested {expected.pca_components}")
    if expected.run_id is not None and info.get("run_id") != expected.run_id:
        problems.append(f"run_id {info.get('run_id')!r} != {expected.run_id!r}")
    if expected.images_selected is not None and selected != expected.images_selected:
        problems.append(f"images_selected {selected} != planned {expected.images_selected}")
    if expected.skipped_files is not None and n_skipped != expected.skipped_files:
        problems.append(f"skipped_files {n_skipped} != {expected.skipped_files} found on S3")
    if info.get("feature_dim") != FEATURE_DIM:
        problems.append(f"feature_dim {info.get('feature_dim')!r} != {FEATURE_DIM}")
    if n_features != selected - n_errors:
        problems.append(
            f"counts.features {n_features} != images_selected {selected} - errors {n_errors}"
        )
    if n_features < 1:
        problems.append("no image was processed")
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

    # Data sets against the counts.
    if not check_features:
        seen = None
    else:
        seen = features if features is not None else features_in_folder(folder)
    problems += _feature_problems(seen, n_features) if seen is not None else []
    rows, lengths, nulls = parquet_vector_stats(
        folder.parts(layout.PCA, layout.PARQUET), layout.VECTOR_COLUMN[layout.PCA]
    )
    if rows != n_features:
        problems.append(f"pca/parquet has {rows} rows, counts.features is {n_features}")
    if nulls or (rows and lengths != {k}):
        problems.append(f"PCA vector sizes {sorted(lengths)} ({nulls} null), expected {k}")
    rows, headers, unreadable = csv_rows(folder.parts(layout.PCA, layout.CSV))
    problems += [f"{layout.PCA}/csv: {p}" for p in unreadable]
    problems += _csv_problems(layout.PCA, rows, headers, layout.pca_columns(k), n_features)
    statuses = parquet_value_counts(folder.parts(layout.METADATA, layout.PARQUET), "status")
    if sum(statuses.values()) != selected or statuses.get("error", 0) != n_errors:
        problems.append(f"metadata/parquet statuses {dict(statuses)} vs {selected} selected")
    rows, _, unreadable = csv_rows(folder.parts(layout.METADATA, layout.CSV))
    problems += [f"metadata/csv: {p}" for p in unreadable]
    if rows != selected:
        problems.append(f"metadata/csv has {rows} rows for {selected} images selected")
    for path, name, columns, count, what in (
        (folder.errors_csv, layout.ERRORS_CSV, layout.ERROR_COLUMNS, n_errors, "errors"),
        (folder.skipped_csv, layout.SKIPPED_CSV, layout.SKIPPED_COLUMNS, n_skipped, "skipped"),
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
    if variance is None or variance[0] != k or variance[2]:
        problems.append(f"{layout.VARIANCE_CSV} missing, unreadable or not {k} rows")

    if problems:
        raise OutputValidationError("; ".join(problems))
    duration = float(info.get("duration_seconds") or 0.0)
    return OutputReport(
        images_selected=selected,
        features=n_features,
        errors=n_errors,
        pca_components=k,
        variance_kept=variance_kept,
        duration_seconds=duration,
        images_per_second=selected / duration if duration > 0 else None,
    )
