"""Run output folders written by hand, in the layout of docs/contract.md, for fast tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fruits_contract import outputs as layout
from fruits_features.output_layout import RunFolder

SHA = "ab" * 32
# Names a page must show as text, never run as markup.
EVIL_NAME = '<img src=x onerror="alert(1)">&amp;.jpg'
EVIL_REASON = "not an image: <script>alert('x')</script> & more"
EVIL_CLASS = "Apple <b>Bold</b>"


def class_names(count: int) -> list[str]:
    return [f"Fruit {i:03d}" for i in range(count)]


def write_run(
    folder: Path,
    classes: list[str],
    per_class: int = 5,
    k: int = 6,
    errors: list[dict] | None = None,
    *,
    old: bool = False,
    seed: int = 0,
) -> Path:
    """A complete run folder with clustered PCA vectors (one cluster per class).

    ``old`` leaves out what earlier versions of the job did not write: metadata/,
    features/, stages, versions and the variance lists in model_info (variance.csv only).
    """
    errors = errors or []
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, size=(len(classes), k))
    labels = [c for c in classes for _ in range(per_class)]
    paths = [f"file:/data/Training/{label}/{i}_100.jpg" for i, label in enumerate(labels)]
    vectors = np.repeat(centres, per_class, axis=0) + rng.normal(0, 1, (len(labels), k))
    explained = np.sort(rng.dirichlet(np.ones(k * 4)))[::-1][:k]
    cumulative = np.cumsum(explained)

    run = RunFolder(folder)

    def parquet(name: str, table: pa.Table) -> None:
        target = run.dataset(name, layout.PARQUET)
        target.mkdir(parents=True)
        pq.write_table(table, target / "part-00000-x.snappy.parquet")
        (target / layout.SUCCESS).write_text("")

    parquet(
        layout.PCA,
        pa.table({"path": paths, "label": labels, "pca": [list(map(float, v)) for v in vectors]}),
    )
    if not old:
        parquet(
            layout.FEATURES,
            pa.table(
                {
                    "path": paths,
                    "label": labels,
                    "features": [[0.5] * 4 for _ in paths],  # width does not matter here
                }
            ),
        )
        parquet(
            layout.METADATA,
            pa.table(
                {
                    "path": paths + [e["path"] for e in errors],
                    "label": labels + [e["label"] for e in errors],
                    "bytes": [1000] * len(paths) + [int(e["bytes"]) for e in errors],
                    "status": ["ok"] * len(paths) + ["error"] * len(errors),
                }
            ),
        )
    run.errors_csv.parent.mkdir()
    with run.errors_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, layout.ERROR_COLUMNS)
        writer.writeheader()
        writer.writerows(errors)
    run.model_info.parent.mkdir()
    with run.variance_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(layout.VARIANCE_COLUMNS)
        for i, (e, c) in enumerate(zip(explained, cumulative, strict=True)):
            writer.writerow([i + 1, f"{e:.10f}", f"{c:.10f}"])
    info = {
        "run_id": "synthetic-run",
        "mode": "full",
        "input": "file:/data",
        "output": f"file:{folder}",
        "engine": "tensorflow",
        "image_size": 224,
        "batch_size": 64,
        "pca_components": k,
        "feature_dim": 1280,
        "counts": {
            "files_listed": len(paths) + len(errors),
            "skipped_files": 0,
            "images_selected": len(paths) + len(errors),
            "features": len(paths),
            "errors": len(errors),
        },
        "variance_kept": float(cumulative[-1]),
        "weights": {"uri": "file:/models/w.weights.h5", "sha256": SHA},
        "started_at": "2026-01-02T03:04:05+00:00",
        "finished_at": "2026-01-02T03:05:45+00:00",
        "duration_seconds": 100.0,
    }
    if not old:
        info |= {
            "explained_variance": explained.tolist(),
            "cumulative_variance": cumulative.tolist(),
            "versions": {"python": "3.11.7", "spark": "3.5.9", "numpy": "2.4.6"},
            "stages": {
                "pca": {"seconds": 3.0, "images_per_second": 100.0},
                "features": {"seconds": 10.0, "images_per_second": 30.5},
                "list": {"seconds": 1.0},
            },
        }
    run.model_info.write_text(json.dumps(info, indent=2))
    run.success.write_text("")
    return folder
