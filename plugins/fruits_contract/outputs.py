"""A run's outputs under the job's ``--output``: folder and file names, columns, and the CSV
dialect every CSV file is written in (docs/contract.md).

The job writes what is named here; the Airflow side validates, reports and summarises it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from fruits_contract.engines import FEATURE_DIM

# Written last by the job: the run is complete.
SUCCESS = "_SUCCESS"

# Data sets: one folder each, written in every format of its FORMATS (``<name>/<format>/``),
# by the executors in parallel; their size grows with the bank.
PARQUET, CSV = "parquet", "csv"
FORMATS = (PARQUET, CSV)
PCA = "pca"  # path, label, pca: every image with features
METADATA = "metadata"  # path, label, bytes, modified, status: every image selected
ERRORS = "errors"  # path, label, bytes, reason: every selected image that could not be read
SKIPPED = "skipped"  # path, label, bytes, reason: every listed file the run does not process
LISTING = "listing"  # path, bytes, modified: every file the run listed (Parquet only)
# The run's vectors, exported only when asked (--export-features): otherwise a run's
# features are the feature table's rows of its images (metadata's key columns).
FEATURES = "features"
DATASETS = (PCA, METADATA, ERRORS, SKIPPED, LISTING, FEATURES)
DATASET_FORMATS = {LISTING: (PARQUET,)}


def formats(dataset: str) -> tuple[str, ...]:
    """The formats a data set is written in."""
    return DATASET_FORMATS.get(dataset, FORMATS)


# Single files: the run's record, and its summary (of a size bounded by the classes and a
# sample, whatever the bank's size): what the Airflow side downloads and reports from.
MODEL_INFO = "model_info/model_info.json"
VARIANCE_CSV = "model_info/variance.csv"
SUMMARY_CLASSES = "summary/classes.csv"  # label, images, errors: one row per class
SUMMARY_ERRORS = "summary/errors.csv"  # the first SAMPLE_ROWS errors, by path
SUMMARY_SKIPPED = "summary/skipped.csv"  # the first SAMPLE_ROWS skipped files, by path
SUMMARY_PCA_SAMPLE = "summary/pca_sample"  # Parquet: PCA of a fixed sample of the images
SAMPLE_ROWS = 200
PCA_SAMPLE_ROWS = 5000
# What a summary download copies: the run's folder's sub-prefixes of a bounded size.
SUMMARY_PARTS = ("model_info/", "summary/", SUCCESS)

# The feature store, under the job's --feature-store: the Delta table, and the record of its
# last maintenance (or of its creation) that tells when the next one is due.
STORE_TABLE = "features"
STORE_MAINTENANCE = "maintenance.json"

KEY_COLUMNS = ("path", "label")
ERROR_COLUMNS = ("path", "label", "bytes", "reason")
SKIPPED_COLUMNS = ERROR_COLUMNS
METADATA_COLUMNS = ("path", "label", "bytes", "modified", "status")
LISTING_COLUMNS = ("path", "bytes", "modified")
CLASS_COLUMNS = ("label", "images", "errors")
VARIANCE_COLUMNS = ("component", "explained_variance", "cumulative_variance")
# The vector column of each Parquet data set, and what its elements are called in the CSV.
VECTOR_COLUMN = {FEATURES: "features", PCA: "pca"}


def feature_names() -> list[str]:
    """The CSV columns of the features' elements: f0000 … f1279."""
    return [f"f{i:04d}" for i in range(FEATURE_DIM)]


def pca_names(k: int) -> list[str]:
    """The CSV columns of the PCA's elements: pc001 … pcK."""
    return [f"pc{i:03d}" for i in range(1, k + 1)]


def feature_columns() -> list[str]:
    """CSV header of features/csv."""
    return [*KEY_COLUMNS, *feature_names()]


def pca_columns(k: int) -> list[str]:
    """CSV header of pca/csv."""
    return [*KEY_COLUMNS, *pca_names(k)]


def to_csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A whole CSV file, RFC 4180 (Python's csv module: quotes doubled, fields holding a
    comma, a quote or a line break quoted), one ``\\n`` per line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def variance_csv(explained: Sequence[float]) -> str:
    """model_info/variance.csv: each component's share of the variance and the running sum."""
    cumulative = 0.0
    rows = []
    for index, value in enumerate(explained, start=1):
        cumulative += value
        rows.append((index, f"{value:.10f}", f"{cumulative:.10f}"))
    return to_csv_text(VARIANCE_COLUMNS, rows)
