"""Listing the bank: a table of every file under the mode's class folders (path, bytes,
modified), made on the executors, never held on the driver.

Two sources. Without an inventory the driver lists the top of ``Training/`` once (its class
folders and any file directly in it: a number bounded by the classes), and the executors
list the mode's class folders in parallel, each a stream of pages (S3 through boto3, 1,000
keys at a time; a local disk through ``os.scandir``). With ``--inventory`` (the manifest of
an S3 Inventory report in Parquet) Spark reads the report's data files, and no object of
the bank is listed at all. Either way the run writes its listing as a table
(``listing/``) and reads everything after from it: the bank is listed once per run.

Names Hadoop would hide (``_x``, ``.x``) and names with ``:`` are listed like any other: the
input rule says what the run does with them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_contract.modes import Mode
from fruits_job import storage

LISTING_SCHEMA = "path string, bytes long, modified long"
# Rows per Arrow batch a listing task yields.
BATCH_ROWS = 10_000
TASKS_PER_CORE = 4


def _s3_client():
    import boto3

    return boto3.client("s3")


def _s3_entries(bucket: str, prefix: str, delimiter: str | None = None) -> Iterator[dict]:
    """Objects (and, with a delimiter, common prefixes) under ``prefix``, page by page."""
    options = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        options["Delimiter"] = delimiter
    for page in _s3_client().get_paginator("list_objects_v2").paginate(**options):
        yield from ({"folder": p["Prefix"]} for p in page.get("CommonPrefixes", []))
        yield from page.get("Contents", [])


def _s3_split(uri: str) -> tuple[str, str, str] | None:
    """(scheme://bucket/, bucket, key) of an S3 URI, the key as it is (a key may hold ``%``,
    ``?`` or ``#``: no URL parsing); None for a local path."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("s3", "s3a", "s3n"):
        return None
    bucket, _, key = rest.partition("/")
    return f"{scheme}://{bucket}/", bucket, key


def _local_path(uri: str) -> str:
    return uri[len("file:") :] if uri.startswith("file:") else uri


def _file_row(entry: os.DirEntry) -> tuple[str, int, int]:
    info = entry.stat(follow_symlinks=False)
    return "file:" + entry.path, info.st_size, info.st_mtime_ns // 1_000_000


def _object_row(root: str, obj: dict) -> tuple[str, int, int]:
    return root + obj["Key"], int(obj["Size"]), int(obj["LastModified"].timestamp() * 1000)


def list_folder(uri: str) -> Iterator[tuple[str, int, int]]:
    """(path, bytes, modified in ms) of every file below a folder (an S3 folder: its URI
    ending in ``/``), streamed."""
    s3 = _s3_split(uri)
    if s3 is not None:
        root, bucket, prefix = s3
        for obj in _s3_entries(bucket, prefix):
            if not obj["Key"].endswith("/"):  # folder markers are not files
                yield _object_row(root, obj)
        return
    stack = [_local_path(uri)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield _file_row(entry)


def top_of(training: str) -> tuple[list[str], list[tuple[str, int, int]]]:
    """The folders directly under ``training`` (URIs, S3 ones ending in ``/``) and the files
    directly in it."""
    folders, files = [], []
    s3 = _s3_split(training)
    if s3 is not None:
        root, bucket, key = s3
        for entry in _s3_entries(bucket, key.rstrip("/") + "/", delimiter="/"):
            if "folder" in entry:
                folders.append(root + entry["folder"])
            elif not entry["Key"].endswith("/"):
                files.append(_object_row(root, entry))
        return folders, files
    with os.scandir(_local_path(training)) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append("file:" + entry.path)
            elif entry.is_file(follow_symlinks=False):
                files.append(_file_row(entry))
    return folders, files


def _list_folders(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Executor side: each folder of the batches, listed into batches of rows."""
    for batch in batches:
        for uri in batch.column(0).to_pylist():
            rows: list[tuple[str, int, int]] = []
            for row in list_folder(uri):
                rows.append(row)
                if len(rows) == BATCH_ROWS:
                    yield _batch(rows)
                    rows = []
            if rows:
                yield _batch(rows)


def _batch(rows: list[tuple[str, int, int]]) -> pa.RecordBatch:
    paths, sizes, times = zip(*rows, strict=True)
    return pa.RecordBatch.from_pydict(
        {
            "path": pa.array(paths, pa.string()),
            "bytes": pa.array(sizes, pa.int64()),
            "modified": pa.array(times, pa.int64()),
        }
    )


def spark_listing(spark: SparkSession, training: str, mode: Mode) -> DataFrame:
    """The files under the mode's class folders, listed on the executors, and the files
    directly under ``training`` whose name the mode's prefix selects."""
    folders, files = top_of(training)
    name = training.rstrip("/") + "/"
    wanted = [f for f in folders if f[len(name) :].startswith(mode.class_prefix)]
    loose = [f for f in files if f[0][len(name) :].startswith(mode.class_prefix)]
    # Class folders listed in parallel, each a stream of pages; a few tasks per core, not one
    # per folder: a task costs a Python worker's round trip (200 one-folder tasks took 54 s
    # on 2 cores, for 2,000 files).
    sc = spark.sparkContext
    tasks = max(1, min(len(wanted), TASKS_PER_CORE * sc.defaultParallelism))
    folder_rows = sc.parallelize([(f,) for f in wanted], tasks)
    listed = spark.createDataFrame(folder_rows, "folder string").mapInArrow(
        _list_folders, LISTING_SCHEMA
    )
    if loose:
        listed = listed.unionByName(spark.createDataFrame(loose, LISTING_SCHEMA))
    return listed


def inventory_listing(
    spark: SparkSession, manifest_uri: str, training: str, mode: Mode
) -> DataFrame:
    """The bank's files under the mode's part of ``training``, from an S3 Inventory report
    (Parquet): its manifest names the data files; current versions only, no delete markers."""
    manifest = json.loads(storage.read_text(spark, manifest_uri))
    if manifest.get("fileFormat", "").lower() != "parquet":
        raise ValueError(
            f"{manifest_uri}: an inventory in {manifest.get('fileFormat')}, not Parquet"
        )
    scheme = manifest_uri.partition("://")[0]
    destination = manifest["destinationBucket"].rsplit(":", 1)[-1]
    data = [f"{scheme}://{destination}/{f['key']}" for f in manifest["files"]]
    split = _s3_split(training)
    if split is None:
        raise ValueError(f"an inventory lists an S3 bank, not {training}")
    root, bucket, key = split
    prefix = key.rstrip("/") + "/" + mode.class_prefix
    report = spark.read.parquet(*data)
    keep = (F.col("bucket") == bucket) & F.col("key").startswith(prefix)
    if "is_latest" in report.columns:
        keep &= F.col("is_latest")
    if "is_delete_marker" in report.columns:
        keep &= ~F.col("is_delete_marker")
    return report.where(keep & ~F.col("key").endswith("/")).select(
        F.concat(F.lit(root), F.col("key")).alias("path"),
        F.col("size").cast("long").alias("bytes"),
        F.unix_millis(F.col("last_modified_date").cast("timestamp")).alias("modified"),
    )
