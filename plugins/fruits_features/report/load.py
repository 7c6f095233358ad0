"""Read a downloaded run output folder (docs/contract.md) without Spark.

Older runs may lack a file or a model_info field: everything but model_info.json is
optional, and what is missing shows as "not recorded" in the report instead of failing it.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fruits_contract import outputs as layout
from fruits_features.output_layout import RunFolder

# The job's stages in the order they run; model_info stores them sorted by name.
STAGE_ORDER = (
    "list",
    "prepare_model",
    "features",
    "store_write",
    "errors_and_metadata",
    "write_features",
    "pca",
)


class RunFolderError(ValueError):
    """The folder is not a run output folder."""


@dataclass(frozen=True)
class ErrorRow:
    path: str
    label: str
    bytes: int | None
    reason: str

    @property
    def file_name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class RunData:
    folder: Path
    info: dict[str, Any]
    explained: list[float]
    cumulative: list[float]
    complete: bool  # _SUCCESS present
    # Sorted by path, so that sampling for the 1-NN score is the same on every read.
    pca: np.ndarray | None = None
    pca_labels: np.ndarray | None = None
    feature_rows: int | None = None
    errors: list[ErrorRow] = field(default_factory=list)
    errors_file: bool = False
    # Files listed but not processed (not images, names Spark cannot read), with why.
    skipped: list[ErrorRow] = field(default_factory=list)
    # label → (images selected, errors); from metadata/, else from pca/ + errors.csv.
    per_class: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Where the run read and wrote: the job's own paths, unless better known (S3 URIs of a
    # run the DAG downloaded, or ran on a staged copy with local compute).
    input_uri: str | None = None
    output_uri: str | None = None

    @property
    def counts(self) -> dict[str, Any]:
        return self.info.get("counts", {})

    @property
    def stages(self) -> dict[str, dict[str, float]]:
        """Stage timings in run order; stages this report does not know come last."""
        stages = self.info.get("stages") or {}
        rank = {name: i for i, name in enumerate(STAGE_ORDER)}
        return {n: stages[n] for n in sorted(stages, key=lambda n: rank.get(n, len(rank)))}


def _read_parquet(folder: RunFolder, name: str, columns: list[str]) -> pa.Table | None:
    files = folder.parts(name, layout.PARQUET)
    if not files:
        return None
    return pa.concat_tables(pq.read_table(f, columns=columns) for f in files)


def _read_variance(folder: RunFolder, info: dict[str, Any]) -> tuple[list[float], list[float]]:
    explained = [float(v) for v in info.get("explained_variance") or []]
    cumulative = [float(v) for v in info.get("cumulative_variance") or []]
    path = folder.variance_csv
    if not explained and path.is_file():
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        explained = [float(r["explained_variance"]) for r in rows]
        cumulative = [float(r["cumulative_variance"]) for r in rows]
    if explained and not cumulative:
        cumulative = np.cumsum(explained).tolist()
    return explained, cumulative


def _read_errors(path: Path) -> list[ErrorRow]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        rows = list(csv.DictReader(handle))
    result = []
    for row in rows:
        size = (row.get("bytes") or "").strip()
        result.append(
            ErrorRow(
                path=row.get("path") or "",
                label=row.get("label") or "",
                bytes=int(size) if size.lstrip("-").isdigit() else None,
                reason=row.get("reason") or "",
            )
        )
    return result


def _pca_matrix(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(np.asarray(table.column("path").to_pylist(), dtype=object), kind="stable")
    vectors = table.column("pca").combine_chunks()
    width = len(vectors[0]) if len(vectors) else 0
    matrix = np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
    matrix = matrix.reshape(len(vectors), width)
    labels = np.asarray(table.column("label").to_pylist(), dtype=object)
    return matrix[order], labels[order]


def _per_class(
    folder: RunFolder, pca_labels: np.ndarray | None, errors: list[ErrorRow]
) -> dict[str, tuple[int, int]]:
    metadata = _read_parquet(folder, layout.METADATA, ["label", "status"])
    if metadata is not None:
        selected = Counter(metadata.column("label").to_pylist())
        failed = Counter(
            label
            for label, status in zip(
                metadata.column("label").to_pylist(),
                metadata.column("status").to_pylist(),
                strict=True,
            )
            if status != "ok"
        )
    else:
        failed = Counter(e.label for e in errors)
        selected = Counter(pca_labels.tolist() if pca_labels is not None else []) + failed
    return {label: (selected[label], failed[label]) for label in sorted(selected)}


def load_run(path: Path) -> RunData:
    folder = RunFolder(path)
    if not folder.is_run():
        raise RunFolderError(f"{folder.root} is not a run output folder: no {layout.MODEL_INFO}")
    info = folder.read_model_info()
    explained, cumulative = _read_variance(folder, info)
    data = RunData(
        folder=folder.root,
        info=info,
        explained=explained,
        cumulative=cumulative,
        complete=folder.success.exists(),
        input_uri=info.get("input"),
        output_uri=folder.downloaded_from() or info.get("output"),
    )
    pca = _read_parquet(folder, layout.PCA, ["path", "label", "pca"])
    if pca is not None and pca.num_rows:
        data.pca, data.pca_labels = _pca_matrix(pca)
    features = folder.parts(layout.FEATURES, layout.PARQUET)
    if features:
        # Row counts from the footers: the 1280-d vectors themselves are never read.
        data.feature_rows = sum(pq.read_metadata(f).num_rows for f in features)
    if folder.errors_csv.is_file():
        data.errors_file = True
        data.errors = _read_errors(folder.errors_csv)
    if folder.skipped_csv.is_file():
        data.skipped = _read_errors(folder.skipped_csv)
    data.per_class = _per_class(folder, data.pca_labels, data.errors)
    return data
