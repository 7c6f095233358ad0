"""Read a downloaded run's record and summary (docs/contract.md) without Spark: a bounded
amount whatever the bank's size. The data sets themselves are never read here.

What is missing shows as "not recorded" in the report instead of failing it; only
model_info.json is required.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fruits_contract import outputs as layout
from fruits_features.output_layout import RunFolder, is_part

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
    # The PCA of the run's fixed sample (summary/pca_sample), sorted by path: the 1-NN
    # score and the map are the same on every read.
    pca: np.ndarray | None = None
    pca_labels: np.ndarray | None = None
    # The first errors and skipped files by path (summary/); None: the file is missing.
    errors: list[ErrorRow] | None = None
    skipped: list[ErrorRow] | None = None
    # label → (images selected, errors), from summary/classes.csv.
    per_class: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Where the run read and wrote: the job's own paths, unless better known (the S3 URI of
    # a run the DAG downloaded).
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


def _read_rows(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return list(csv.DictReader(handle))


def _read_variance(folder: RunFolder, info: dict[str, Any]) -> tuple[list[float], list[float]]:
    explained = [float(v) for v in info.get("explained_variance") or []]
    cumulative = [float(v) for v in info.get("cumulative_variance") or []]
    rows = _read_rows(folder.file(layout.VARIANCE_CSV))
    if not explained and rows:
        explained = [float(r["explained_variance"]) for r in rows]
        cumulative = [float(r["cumulative_variance"]) for r in rows]
    if explained and not cumulative:
        cumulative = np.cumsum(explained).tolist()
    return explained, cumulative


def _read_files(path: Path) -> list[ErrorRow] | None:
    rows = _read_rows(path)
    if rows is None:
        return None
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


def _read_pca_sample(folder: RunFolder) -> tuple[np.ndarray, np.ndarray] | None:
    sample = folder.file(layout.SUMMARY_PCA_SAMPLE)
    parts = sorted(p for p in sample.glob("*.parquet") if is_part(p.name, layout.PARQUET))
    if not parts:
        return None
    table = pa.concat_tables(pq.read_table(p, columns=["path", "label", "pca"]) for p in parts)
    if not table.num_rows:
        return None
    order = np.argsort(np.asarray(table.column("path").to_pylist(), dtype=object), kind="stable")
    vectors = table.column("pca").combine_chunks()
    matrix = np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
    matrix = matrix.reshape(len(vectors), len(vectors[0]))
    labels = np.asarray(table.column("label").to_pylist(), dtype=object)
    return matrix[order], labels[order]


def _per_class(folder: RunFolder) -> dict[str, tuple[int, int]]:
    rows = _read_rows(folder.file(layout.SUMMARY_CLASSES)) or []
    return {r["label"]: (int(r["images"]), int(r["errors"])) for r in sorted(rows, key=_label)}


def _label(row: dict[str, str]) -> str:
    return row["label"]


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
    sample = _read_pca_sample(folder)
    if sample is not None:
        data.pca, data.pca_labels = sample
    data.errors = _read_files(folder.file(layout.SUMMARY_ERRORS))
    data.skipped = _read_files(folder.file(layout.SUMMARY_SKIPPED))
    data.per_class = _per_class(folder)
    return data
