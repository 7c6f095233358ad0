"""The run's S3: the provider's S3Hook (connection, endpoints, credentials) with the transfers a
run makes. A task makes one hook and reaches S3 through it."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from fruits_contract.outputs import SUCCESS

log = logging.getLogger(__name__)

# Many small objects (images, Spark part files): latency-bound, so a few in flight at once.
TRANSFER_THREADS = 8
# Where a download lands before it is complete (results.py removes those of killed tasks).
PARTIAL = ".partial"


def relative_key(key: str, prefix: str) -> PurePosixPath:
    """Path of ``key`` below ``prefix``; refuses keys that would escape the target folder."""
    if not key.startswith(prefix):
        raise ValueError(f"key {key!r} is not under {prefix!r}")
    rel = PurePosixPath(key[len(prefix) :])
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError(f"unsafe key {key!r} under {prefix!r}")
    return rel


@dataclass(frozen=True)
class S3Access:
    """How a process beside Airflow reaches S3 as the connection does: Spark through S3A (as
    EMRFS on a cluster), boto3 and pyarrow through the AWS SDKs' own variables."""

    region: str
    endpoint: str | None = None  # None: AWS itself
    access_key: str | None = None  # None: the AWS SDKs find credentials themselves
    secret_key: str | None = None
    session_token: str | None = None

    def spark_conf(self) -> dict[str, str]:
        """Spark settings: ``s3://`` through S3A. No secret: credentials go by environment."""
        conf = {
            "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "spark.hadoop.fs.s3a.endpoint.region": self.region,
        }
        if self.endpoint:
            conf.update(
                {
                    "spark.hadoop.fs.s3a.endpoint": self.endpoint,
                    "spark.hadoop.fs.s3a.path.style.access": "true",
                    "spark.hadoop.fs.s3a.connection.ssl.enabled": str(
                        self.endpoint.startswith("https")
                    ).lower(),
                    # A non-AWS server's ETags need not match what S3A expects of AWS's.
                    "spark.hadoop.fs.s3a.change.detection.mode": "warn",
                    "spark.hadoop.fs.s3a.change.detection.version.required": "false",
                }
            )
        return conf

    def environment(self) -> dict[str, str]:
        """Variables S3A (its environment credentials), boto3 and pyarrow read."""
        env = {"AWS_REGION": self.region}
        if self.endpoint:
            env["AWS_ENDPOINT_URL_S3"] = self.endpoint
        if self.access_key and self.secret_key:
            env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
            if self.session_token:
                env["AWS_SESSION_TOKEN"] = self.session_token
        return env


class RunS3Hook(S3Hook):
    """S3Hook with a run's listings and folder transfers (all through ``self.conn``)."""

    def access(self) -> S3Access:
        """How Spark, boto3 and pyarrow beside Airflow reach S3 as this connection does."""
        credentials = self.get_credentials()
        return S3Access(
            region=self.conn_region_name or "us-east-1",
            endpoint=self.conn_config.get_service_endpoint_url("s3"),
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            session_token=credentials.token,
        )

    def iter_objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object under ``prefix`` (Key, Size, ETag, LastModified...), page by page,
        folder markers left out."""
        pages = self.conn.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            yield from (o for o in page.get("Contents", []) if not o["Key"].endswith("/"))

    def list_objects(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        return list(self.iter_objects(bucket, prefix))

    def object_keys(self, bucket: str, prefix: str) -> list[str]:
        return [o["Key"] for o in self.iter_objects(bucket, prefix)]

    def read_text(self, bucket: str, key: str) -> str | None:
        """An object's text, None when there is no such object."""
        try:
            body = self.conn.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.conn.exceptions.NoSuchKey:
            return None
        return body.decode("utf-8", errors="replace")

    def put_text(self, bucket: str, key: str, text: str) -> None:
        self.conn.put_object(Bucket=bucket, Key=key, Body=text.encode())

    def create_text(self, bucket: str, key: str, text: str) -> bool:
        """Write an object only if there is none (a conditional write): False if there is."""
        from botocore.exceptions import ClientError

        try:
            self.conn.put_object(Bucket=bucket, Key=key, Body=text.encode(), IfNoneMatch="*")
        except ClientError as error:
            # 412: it exists; 409: another conditional write of it is in flight.
            if error.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
                "409",
                "412",
            ):
                return False
            raise
        return True

    def download_objects(
        self, bucket: str, objects: Iterable[dict[str, Any]], prefix: str, target: Path
    ) -> int:
        """Download listed objects to ``target``; a local copy keeps the object's time (its
        ``LastModified``), so the copy lists as the original does."""
        jobs = [(obj, target / relative_key(obj["Key"], prefix)) for obj in objects]
        for _, path in jobs:
            path.parent.mkdir(parents=True, exist_ok=True)

        def fetch(job: tuple[dict[str, Any], Path]) -> None:
            obj, path = job
            self.conn.download_file(bucket, obj["Key"], str(path))
            if "LastModified" in obj:
                moment = obj["LastModified"].timestamp()
                os.utime(path, (moment, moment))

        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            list(pool.map(fetch, jobs))
        return len(jobs)

    def download_keys(self, bucket: str, keys: Iterable[str], prefix: str, target: Path) -> int:
        """Download ``keys`` (all under ``prefix``) to ``target``, keeping their relative paths."""
        return self.download_objects(bucket, [{"Key": key} for key in keys], prefix, target)

    def download_prefix(
        self, bucket: str, prefix: str, target: Path, parts: Iterable[str] = ("",)
    ) -> int:
        """Replace ``target`` with a copy of everything under ``prefix`` + each of ``parts``
        (sub-prefixes: by default all of ``prefix``); returns the file count.

        Files land in a sibling folder first, so ``target`` never holds a half download.
        """
        keys = [key for part in parts for key in self.object_keys(bucket, prefix + part)]
        if not keys:
            raise FileNotFoundError(f"nothing under s3://{bucket}/{prefix}")
        partial = target.with_name(target.name + PARTIAL)
        shutil.rmtree(partial, ignore_errors=True)
        try:
            count = self.download_keys(bucket, keys, prefix, partial)
            if target.exists():
                # Only this run writes here (the run key is unique): this is a retried download.
                shutil.rmtree(target)
            partial.rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return count

    def upload_folder(self, folder: Path, bucket: str, prefix: str) -> int:
        """Upload a folder under ``prefix``; ``_SUCCESS`` files go last so the marker means
        complete. Local-filesystem checksums (``.crc``) are left behind: they mean nothing
        on S3."""
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".crc"))
        data = [p for p in files if p.name != SUCCESS]
        # Inner markers (one per Spark output folder) first, the top-level one strictly last.
        markers = sorted((p for p in files if p.name == SUCCESS), key=lambda p: p.parent == folder)

        def put(path: Path) -> None:
            key = prefix + path.relative_to(folder).as_posix()
            self.conn.upload_file(str(path), bucket, key)

        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            list(pool.map(put, data))
        for path in markers:
            put(path)
        return len(files)
