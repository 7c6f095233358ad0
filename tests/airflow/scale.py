"""The Airflow side at a bank's scale: an S3 Inventory report of N objects, a run's outputs
of N images on S3, and the tasks' work replayed on them with their peak memory measured.

Shared by the scale test (tests/airflow/test_scale_tasks.py) and the scale benchmark
(bench/scale_benchmark.py). The run's data sets are written as the contract lays them out
(fruits_contract.outputs), at N rows each; what the Airflow side reads of them is their
part files' ends, so their values are constant (a few KB of Parquet per million rows).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fruits_contract import outputs

ROWS_PER_GROUP = 128 * 1024
INVENTORY_SCHEMA = pa.schema(
    [
        ("bucket", pa.string()),
        ("key", pa.string()),
        ("size", pa.int64()),
        ("last_modified_date", pa.timestamp("ms", tz="UTC")),
        ("e_tag", pa.string()),
    ]
)
INVENTORY_DELIVERY = "2026-12-06T01-00Z"


def bank_keys(input_prefix: str, images: int, classes: int) -> Iterator[str]:
    """The keys of a bank of ``images`` images over ``classes`` class folders, and three
    files the input rule skips."""
    for index in range(images):
        yield f"{input_prefix}/Training/Class {index % classes:03d}/{index}_100.jpg"
    yield f"{input_prefix}/Training/Class 000/notes.txt"
    yield f"{input_prefix}/Training/Class 001/._IMG_0001.jpg"
    yield f"{input_prefix}/Training/loose.jpg"


SKIPPED_KEYS = 3


def _put_parquet(client, bucket: str, key: str, table: pa.Table) -> None:
    """A Parquet file of ``table`` (a footer and its schema even with no rows, as Spark
    writes an empty data set)."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=ROWS_PER_GROUP)
    client.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_inventory(
    client,
    bucket: str,
    inventory_prefix: str,
    objects: Iterator[tuple[str, int, int]],
    files: int = 2,
    rows_per_group: int = ROWS_PER_GROUP,
) -> str:
    """An S3 Inventory report (Parquet) of ``objects`` (key, size, last modified in ms) in
    ``bucket``, delivered under ``<inventory_prefix>/<bucket>/daily/`` as AWS lays it out,
    its row groups dealt round-robin over ``files`` data files; its configuration's URI
    (what FRUITS_INVENTORY_URI names)."""
    config = f"{inventory_prefix}/{bucket}/daily"
    buffers = [io.BytesIO() for _ in range(files)]
    writers = [pq.ParquetWriter(buffer, INVENTORY_SCHEMA) for buffer in buffers]
    for number, chunk in enumerate(_chunks(objects, rows_per_group)):
        batch = pa.record_batch(
            {
                "bucket": pa.array([bucket] * len(chunk)),
                "key": pa.array([key for key, _, _ in chunk]),
                "size": pa.array([size for _, size, _ in chunk], pa.int64()),
                "last_modified_date": pa.array(
                    [modified for _, _, modified in chunk], pa.timestamp("ms", tz="UTC")
                ),
                "e_tag": pa.array([hashlib.md5(key.encode()).hexdigest() for key, _, _ in chunk]),
            },
            schema=INVENTORY_SCHEMA,
        )
        writers[number % files].write_batch(batch)
    manifest_files = []
    for number, (writer, buffer) in enumerate(zip(writers, buffers, strict=True)):
        writer.close()
        key = f"{config}/data/{number:04d}.parquet"
        client.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        manifest_files.append({"key": key, "size": buffer.tell(), "MD5checksum": "0" * 32})
    manifest = {
        "sourceBucket": bucket,
        "destinationBucket": f"arn:aws:s3:::{bucket}",
        "version": "2016-11-30",
        "fileFormat": "Parquet",
        "fileSchema": "message s3.inventory { required binary bucket (STRING); ... }",
        "files": manifest_files,
    }
    client.put_object(
        Bucket=bucket,
        Key=f"{config}/{INVENTORY_DELIVERY}/manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    return f"s3://{bucket}/{config}"


def synthetic_objects(keys: Iterator[str]) -> Iterator[tuple[str, int, int]]:
    """Inventory rows of ``keys``: a size and a time of their own, as a bank's would be."""
    modified = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
    for key in keys:
        yield key, 10 + len(key), modified


def _dataset(client, bucket: str, prefix: str, name: str, rows: int, row: dict) -> None:
    """A data set of ``rows`` copies of ``row`` in parts of a million rows, and (where the
    contract has CSV) its CSV parts' headers."""
    parts = max(1, -(-rows // 1_000_000))
    for part in range(parts):
        count = min(1_000_000, rows - part * 1_000_000)
        columns = {column: pa.repeat(pa.scalar(value), count) for column, value in row.items()}
        table = pa.table(columns)
        key = f"{prefix}{name}/parquet/part-{part:05d}.snappy.parquet"
        _put_parquet(client, bucket, key, table)
    if outputs.CSV in outputs.formats(name):
        vector = outputs.VECTOR_COLUMN.get(name)
        header = [c for c in row if c != vector]
        if vector == outputs.PCA:
            header += outputs.pca_names(len(row[vector]))
        elif vector == outputs.FEATURES:
            header += outputs.feature_names()
        body = (",".join(header) + "\n").encode()
        client.put_object(Bucket=bucket, Key=f"{prefix}{name}/csv/part-00000.csv", Body=body)


def write_run_outputs(
    client, bucket: str, prefix: str, *, images: int, classes: int, k: int, run_id: str, mode: str
) -> None:
    """A complete run of ``images`` images under ``prefix`` (its data sets, summary, record
    and _SUCCESS), all readable, none with an error."""
    path = f"s3://{bucket}/x/Training/Class 000/0_100.jpg"
    _dataset(
        client,
        bucket,
        prefix,
        outputs.PCA,
        images,
        {"path": path, "label": "Class 000", "pca": [0.5] * k},
    )
    metadata = {"path": path, "label": "Class 000", "bytes": 10, "modified": 0, "status": "ok"}
    _dataset(client, bucket, prefix, outputs.METADATA, images, metadata)
    reason = {"path": path, "label": "Class 000", "bytes": 10, "reason": "x"}
    _dataset(client, bucket, prefix, outputs.ERRORS, 0, reason)
    _dataset(client, bucket, prefix, outputs.SKIPPED, SKIPPED_KEYS, reason)
    listing = {"path": path, "bytes": 10, "modified": 0}
    _dataset(client, bucket, prefix, outputs.LISTING, images + SKIPPED_KEYS, listing)
    per_class = [
        (f"Class {c:03d}", images // classes + (c < images % classes), 0) for c in range(classes)
    ]
    files = {
        outputs.SUMMARY_CLASSES: outputs.to_csv_text(outputs.CLASS_COLUMNS, per_class),
        outputs.SUMMARY_ERRORS: outputs.to_csv_text(outputs.ERROR_COLUMNS, []),
        outputs.SUMMARY_SKIPPED: outputs.to_csv_text(
            outputs.ERROR_COLUMNS, [tuple(reason.values())] * SKIPPED_KEYS
        ),
        outputs.VARIANCE_CSV: outputs.variance_csv([0.5 / k] * k),
    }
    for name, text in files.items():
        client.put_object(Bucket=bucket, Key=prefix + name, Body=text.encode())
    sample = min(images, outputs.PCA_SAMPLE_ROWS)
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "path": [
                f"s3://{bucket}/x/Training/Class {i % classes:03d}/{i}.jpg" for i in range(sample)
            ],
            "label": [f"Class {i % classes:03d}" for i in range(sample)],
            "pca": [list(map(float, v)) for v in rng.normal(size=(sample, k))],
        }
    )
    _put_parquet(
        client,
        bucket,
        f"{prefix}{outputs.SUMMARY_PCA_SAMPLE}/part-00000.parquet",
        table,
    )
    explained = [0.5 / k] * k
    info = {
        "run_id": run_id,
        "mode": mode,
        "input": f"s3://{bucket}/x",
        "output": f"s3://{bucket}/{prefix.rstrip('/')}",
        "engine": "synthetic",
        "pca_components": k,
        "feature_dim": 1280,
        "counts": {
            "files_listed": images + SKIPPED_KEYS,
            "skipped_files": SKIPPED_KEYS,
            "images_selected": images,
            "features": images,
            "errors": 0,
            "features_computed": images,
            "features_reused": 0,
        },
        "features_exported": False,
        "explained_variance": explained,
        "cumulative_variance": [sum(explained[: i + 1]) for i in range(k)],
        "variance_kept": sum(explained),
        "duration_seconds": 100.0,
    }
    client.put_object(
        Bucket=bucket, Key=prefix + outputs.MODEL_INFO, Body=json.dumps(info).encode()
    )
    client.put_object(Bucket=bucket, Key=prefix + outputs.SUCCESS, Body=b"")


@dataclass(frozen=True)
class Peak:
    """A step's peak memory: Python's heap (tracemalloc) and Arrow's buffers (sampled)."""

    python: int
    arrow: int
    seconds: float

    @property
    def total_mb(self) -> float:
        return (self.python + self.arrow) / 2**20


def measure(step: Callable[[], Any]) -> tuple[Any, Peak]:
    """Run ``step``; its result and its peak memory above what was allocated before it."""
    arrow_before = pa.total_allocated_bytes()
    arrow_peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            arrow_peak[0] = max(arrow_peak[0], pa.total_allocated_bytes() - arrow_before)

    sampler = threading.Thread(target=sample, daemon=True)
    tracemalloc.start()
    sampler.start()
    started = time.perf_counter()
    try:
        result = step()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        _, python_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, Peak(python_peak, arrow_peak[0], seconds)


def replay_tasks(
    config, params, run_id: str, write_outputs: Callable[[Any], None]
) -> dict[str, Peak]:
    """check_inputs, download_outputs, validate_outputs and build_run_report's work on a
    bank and a run, each measured; ``write_outputs(plan)`` puts the job's outputs in place
    (the job's part, not measured)."""
    from fruits_features import tasks
    from fruits_features.report import build_report
    from fruits_features.results import download_run

    peaks = {}
    plan, peaks["check_inputs"] = measure(lambda: tasks.plan_run(config, params, run_id))
    write_outputs(plan)
    _, peaks["download_outputs"] = measure(
        lambda: download_run(
            tasks.s3_of(plan), plan.layout, plan.results_path, plan.download, plan.results_keep
        )
    )
    _, peaks["validate_outputs"] = measure(lambda: tasks.check_outputs(plan))
    _, peaks["build_run_report"] = measure(
        lambda: build_report(Path(plan.results_path), input_uri=plan.layout.input_uri)
    )
    return peaks
