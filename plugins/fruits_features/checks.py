"""Input checks (on S3 key listings) and output validation (on a downloaded run folder). Pure."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fruits_features.config import FEATURE_DIM, PipelineConfig
from fruits_features.s3_layout import image_class, mode_selects_class


class InputCheckError(ValueError):
    """The input data cannot make a run of the requested mode."""


class OutputValidationError(ValueError):
    """A run's output folder breaks the contract; the message lists every problem found."""


@dataclass(frozen=True)
class InputSummary:
    images: int
    classes: dict[str, int] = field(default_factory=dict)


def summarize_inputs(keys: Iterable[str], config: PipelineConfig, mode: str) -> InputSummary:
    """Count the images a mode can select among listed keys (``Training/<class>/<image>``)."""
    per_class: Counter[str] = Counter()
    for key in keys:
        cls = image_class(key, config)
        if cls is not None and mode_selects_class(mode, cls):
            per_class[cls] += 1
    return InputSummary(images=sum(per_class.values()), classes=dict(sorted(per_class.items())))


# Written by download_outputs next to a downloaded run: the S3 URI it was copied from.
SOURCE_MARKER = "_SOURCE"


def downloaded_from(folder: Path) -> str | None:
    """The S3 URI a downloaded run folder was copied from (None: not downloaded by the DAG)."""
    marker = folder / SOURCE_MARKER
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None


@dataclass(frozen=True)
class Expected:
    """What the DAG asked for; the outputs must say the same."""

    mode: str
    pca_components: int
    images_selected: int | None = None
    run_id: str | None = None


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


def _data_files(folder: Path, suffix: str) -> list[Path]:
    # Spark's own markers (_SUCCESS, _committed_*) and checksums (.crc) are not data.
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.endswith(suffix) and not p.name.startswith(("_", "."))
    )


def parquet_vector_stats(folder: Path, column: str) -> tuple[int, set[int], int]:
    """Rows, set of list lengths and null vectors of a list column, read batch by batch."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows, lengths, nulls = 0, set(), 0
    for path in _data_files(folder, ".parquet"):
        for batch in pq.ParquetFile(path).iter_batches(columns=[column], batch_size=8192):
            values = batch.column(0)
            rows += len(values)
            nulls += values.null_count
            sizes = pc.list_value_length(values).drop_null()
            if len(sizes):
                lengths.update(int(v) for v in pc.unique(sizes).to_pylist())
    return rows, lengths, nulls


def parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in _data_files(folder, ".parquet"))


def parquet_value_counts(folder: Path, column: str) -> Counter[str]:
    import pyarrow.parquet as pq

    counts: Counter[str] = Counter()
    for path in _data_files(folder, ".parquet"):
        for batch in pq.ParquetFile(path).iter_batches(columns=[column]):
            counts.update(batch.column(0).to_pylist())
    return counts


def csv_rows(folder_or_file: Path) -> tuple[int, list[list[str]]]:
    """Data rows of a CSV file or a Spark CSV folder (header in each part), and distinct headers."""
    paths = [folder_or_file] if folder_or_file.is_file() else _data_files(folder_or_file, ".csv")
    rows, headers = 0, []
    for path in paths:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:  # Spark may leave an empty part for an empty partition
                continue
            if header not in headers:
                headers.append(header)
            rows += sum(1 for _ in reader)
    return rows, headers


def validate_output_folder(folder: Path, expected: Expected) -> OutputReport:
    """Check a downloaded run folder against docs/contract.md; raise listing every problem."""
    problems: list[str] = []
    if not (folder / "_SUCCESS").is_file():
        problems.append("_SUCCESS missing: the job did not finish")
    info_path = folder / "model_info" / "model_info.json"
    try:
        info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise OutputValidationError(
            "; ".join([*problems, f"model_info.json unreadable: {error}"])
        ) from None

    counts = info.get("counts") or {}
    try:
        selected = int(counts["images_selected"])
        n_features = int(counts["features"])
        n_errors = int(counts["errors"])
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
    rows, lengths, nulls = parquet_vector_stats(folder / "features" / "parquet", "features")
    if rows != n_features:
        problems.append(f"features/parquet has {rows} rows, counts.features is {n_features}")
    if nulls or (rows and lengths != {FEATURE_DIM}):
        problems.append(f"feature vector sizes {sorted(lengths)} ({nulls} null), expected 1280")
    rows, lengths, nulls = parquet_vector_stats(folder / "pca" / "parquet", "pca")
    if rows != n_features:
        problems.append(f"pca/parquet has {rows} rows, counts.features is {n_features}")
    if nulls or (rows and lengths != {k}):
        problems.append(f"PCA vector sizes {sorted(lengths)} ({nulls} null), expected {k}")
    rows, headers = csv_rows(folder / "features" / "csv")
    if rows != n_features or any(len(h) != 2 + FEATURE_DIM for h in headers):
        problems.append(f"features/csv: {rows} rows, header widths {[len(h) for h in headers]}")
    rows, headers = csv_rows(folder / "pca" / "csv")
    if rows != n_features or any(len(h) != 2 + k for h in headers):
        problems.append(f"pca/csv: {rows} rows, header widths {[len(h) for h in headers]}")
    statuses = parquet_value_counts(folder / "metadata" / "parquet", "status")
    if sum(statuses.values()) != selected or statuses.get("error", 0) != n_errors:
        problems.append(f"metadata/parquet statuses {dict(statuses)} vs {selected} selected")
    errors_csv = folder / "errors" / "errors.csv"
    if not errors_csv.is_file():
        problems.append("errors/errors.csv missing")
    else:
        rows, headers = csv_rows(errors_csv)
        if rows != n_errors:
            problems.append(f"errors/errors.csv has {rows} rows, counts.errors is {n_errors}")
        if headers and headers[0][:4] != ["path", "label", "bytes", "reason"]:
            problems.append(f"errors/errors.csv header {headers[0]}")
    variance_csv = folder / "model_info" / "variance.csv"
    if not variance_csv.is_file() or csv_rows(variance_csv)[0] != k:
        problems.append(f"model_info/variance.csv missing or not {k} rows")

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
