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
    """A run folder as a summary download leaves it (docs/contract.md), with clustered PCA
    vectors (one cluster per class) as its PCA sample.

    ``old`` leaves out what earlier versions of the job did not write in model_info: stages,
    versions and the variance lists (variance.csv only).
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

    def csv_file(name: str, header, rows) -> None:
        path = run.file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)

    # The summary the job writes for the report: the PCA sample, the classes, the errors.
    sample = run.file(layout.SUMMARY_PCA_SAMPLE)
    sample.mkdir(parents=True)
    pq.write_table(
        pa.table({"path": paths, "label": labels, "pca": [list(map(float, v)) for v in vectors]}),
        sample / "part-00000-x.snappy.parquet",
    )
    failed = {c: sum(e["label"] == c for e in errors) for c in {e["label"] for e in errors}}
    selected = dict.fromkeys(classes, per_class)
    for label, count in failed.items():
        selected[label] = selected.get(label, 0) + count
    csv_file(
        layout.SUMMARY_CLASSES,
        layout.CLASS_COLUMNS,
        [(c, n, failed.get(c, 0)) for c, n in sorted(selected.items())],
    )
    csv_file(
        layout.SUMMARY_ERRORS,
        layout.ERROR_COLUMNS,
        [[e[c] for c in layout.ERROR_COLUMNS] for e in errors],
    )
    csv_file(layout.SUMMARY_SKIPPED, layout.ERROR_COLUMNS, [])
    csv_file(
        layout.VARIANCE_CSV,
        layout.VARIANCE_COLUMNS,
        [
            [i + 1, f"{e:.10f}", f"{c:.10f}"]
            for i, (e, c) in enumerate(zip(explained, cumulative, strict=True))
        ],
    )
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
