"""S3 transfers of a run, on a boto3 client made by Airflow's S3Hook (connection, endpoints)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from fruits_features.config import PipelineConfig
from fruits_features.output_layout import SUCCESS
from fruits_features.s3_layout import relative_key

log = logging.getLogger(__name__)

# Many small objects (images, Spark part files): latency-bound, so a few in flight at once.
TRANSFER_THREADS = 8


def s3_client(config: PipelineConfig) -> Any:
    """A boto3 S3 client as the deployment's Airflow connection says."""
    return S3Hook(
        aws_conn_id=config.storage.aws_conn_id, region_name=config.storage.region
    ).get_conn()


def list_objects(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every object under ``prefix`` (Key, Size, LastModified...), folder markers left out."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o for p in pages for o in p.get("Contents", []) if not o["Key"].endswith("/")]


def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in list_objects(client, bucket, prefix)]


def download_keys(client: Any, bucket: str, keys: Iterable[str], prefix: str, target: Path) -> int:
    """Download ``keys`` (all under ``prefix``) to ``target``, keeping their relative paths."""
    return download_objects(client, bucket, [{"Key": key} for key in keys], prefix, target)


def download_objects(
    client: Any, bucket: str, objects: Iterable[dict[str, Any]], prefix: str, target: Path
) -> int:
    """Download listed objects to ``target``; a local copy keeps the object's time (its
    ``LastModified``), so the copy lists as the original does."""
    jobs = [(obj, target / relative_key(obj["Key"], prefix)) for obj in objects]
    for _, path in jobs:
        path.parent.mkdir(parents=True, exist_ok=True)

    def fetch(job: tuple[dict[str, Any], Path]) -> None:
        obj, path = job
        client.download_file(bucket, obj["Key"], str(path))
        if "LastModified" in obj:
            moment = obj["LastModified"].timestamp()
            os.utime(path, (moment, moment))

    with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
        list(pool.map(fetch, jobs))
    return len(jobs)


def download_prefix(
    client: Any, bucket: str, prefix: str, target: Path, leave_out: Iterable[str] = ()
) -> int:
    """Replace ``target`` with a copy of everything under ``prefix`` but the keys starting
    with ``prefix`` + one of ``leave_out``; returns the file count.

    Files land in a sibling folder first, so ``target`` never holds a half download.
    """
    keys = list_keys(client, bucket, prefix)
    if not keys:
        raise FileNotFoundError(f"nothing under s3://{bucket}/{prefix}")
    keys = [key for key in keys if not key.startswith(tuple(prefix + p for p in leave_out))]
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        count = download_keys(client, bucket, keys, prefix, partial)
        if target.exists():
            # Only this run writes here (the run key is unique): this is a retried download.
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return count


def upload_folder(client: Any, folder: Path, bucket: str, prefix: str) -> int:
    """Upload a folder under ``prefix``; ``_SUCCESS`` files go last so the marker means complete.

    Local-filesystem checksums (``.crc``) are left behind: they mean nothing on S3.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".crc"))
    data = [p for p in files if p.name != SUCCESS]
    # Inner markers (one per Spark output folder) first, the top-level one strictly last.
    markers = sorted((p for p in files if p.name == SUCCESS), key=lambda p: p.parent == folder)

    def put(path: Path) -> None:
        key = prefix + path.relative_to(folder).as_posix()
        client.upload_file(str(path), bucket, key)

    with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
        list(pool.map(put, data))
    for path in markers:
        put(path)
    return len(files)
