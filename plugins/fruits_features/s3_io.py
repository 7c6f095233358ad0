"""S3 transfers of a run, through Airflow's S3Hook (connection and endpoints from Airflow)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from fruits_features.config import PipelineConfig
from fruits_features.output_layout import SUCCESS
from fruits_features.s3_layout import relative_key

log = logging.getLogger(__name__)

# Many small objects (images, Spark part files): latency-bound, so a few in flight at once.
TRANSFER_THREADS = 8


def s3_hook(config: PipelineConfig) -> S3Hook:
    return S3Hook(aws_conn_id=config.storage.aws_conn_id, region_name=config.storage.region)


def list_keys(hook: S3Hook, bucket: str, prefix: str) -> list[str]:
    return [k for k in hook.list_keys(bucket_name=bucket, prefix=prefix) if not k.endswith("/")]


def download_keys(hook: S3Hook, bucket: str, keys: Iterable[str], prefix: str, target: Path) -> int:
    """Download ``keys`` (all under ``prefix``) to ``target``, keeping their relative paths."""
    client = hook.get_conn()
    jobs = [(key, target / relative_key(key, prefix)) for key in keys]
    for _, path in jobs:
        path.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
        list(pool.map(lambda job: client.download_file(bucket, job[0], str(job[1])), jobs))
    return len(jobs)


def download_prefix(hook: S3Hook, bucket: str, prefix: str, target: Path) -> int:
    """Replace ``target`` with a copy of everything under ``prefix``; returns the file count.

    Files land in a sibling folder first, so ``target`` never holds a half download.
    """
    keys = list_keys(hook, bucket, prefix)
    if not keys:
        raise FileNotFoundError(f"nothing under s3://{bucket}/{prefix}")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        count = download_keys(hook, bucket, keys, prefix, partial)
        if target.exists():
            # Only this run writes here (the run key is unique): this is a retried download.
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return count


def upload_folder(hook: S3Hook, folder: Path, bucket: str, prefix: str) -> int:
    """Upload a folder under ``prefix``; ``_SUCCESS`` files go last so the marker means complete.

    Local-filesystem checksums (``.crc``) are left behind: they mean nothing on S3.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".crc"))
    data = [p for p in files if p.name != SUCCESS]
    # Inner markers (one per Spark output folder) first, the top-level one strictly last.
    markers = sorted((p for p in files if p.name == SUCCESS), key=lambda p: p.parent == folder)

    def put(path: Path) -> None:
        key = prefix + path.relative_to(folder).as_posix()
        hook.load_file(filename=path, key=key, bucket_name=bucket, replace=True)

    with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
        list(pool.map(put, data))
    for path in markers:
        put(path)
    return len(files)
