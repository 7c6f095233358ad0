"""Upload the bundled Fruits-360 sample to the stack's bucket.

Run once by the `seed-sample-data` compose service. It talks to S3 through the
same Airflow connection the DAG uses (FRUITS_AWS_CONN_ID), so the images land
exactly where the DAG will look: SeaweedFS by default, real S3 if the env file
points the connection there.

It uploads only to a local S3 (the stack's SeaweedFS): when the connection points at AWS,
it says so and exits, leaving the real bucket alone (``--into-aws`` overrides).

Idempotent: the bucket is created only if missing, and a file is uploaded only
if its key is absent or has another size, so restarting the stack re-uploads
nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("seed_sample_data")

DEFAULT_SOURCE = "/opt/fruits-features/sample_data/fruits-360"


def object_key(prefix: str, relative: Path) -> str:
    relative_key = relative.as_posix()
    prefix = prefix.strip("/")
    return f"{prefix}/{relative_key}" if prefix else relative_key


def ensure_bucket(client: Any, bucket: str) -> bool:
    """Create ``bucket`` if it does not exist; return whether it was created."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = client.meta.region_name
    # us-east-1 is the one region S3 refuses an explicit LocationConstraint for.
    if region and region != "us-east-1":
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
        )
    else:
        client.create_bucket(Bucket=bucket)
    return True


def existing_sizes(client: Any, bucket: str, prefix: str) -> dict[str, int]:
    prefix = prefix.strip("/")
    sizes: dict[str, int] = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
        for item in page.get("Contents", []):
            sizes[item["Key"]] = item["Size"]
    return sizes


def seed(client: Any, bucket: str, prefix: str, source: Path) -> tuple[int, int]:
    """Upload every file under ``source``; return (uploaded, already present)."""
    if not source.is_dir():
        raise FileNotFoundError(f"sample data folder not found: {source}")
    if ensure_bucket(client, bucket):
        log.info("created bucket %s", bucket)
    present = existing_sizes(client, bucket, prefix)
    uploaded = skipped = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        key = object_key(prefix, path.relative_to(source))
        if present.get(key) == path.stat().st_size:
            skipped += 1
            continue
        client.upload_file(str(path), bucket, key)
        uploaded += 1
    return uploaded, skipped


def is_aws_endpoint(endpoint_url: str) -> bool:
    """Does the client talk to AWS itself (not to the stack's SeaweedFS)?"""
    host = urlsplit(endpoint_url).hostname or ""
    return host == "amazonaws.com" or host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def s3_client_from_airflow(conn_id: str) -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id).get_conn()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="local sample folder")
    parser.add_argument("--bucket", default=os.environ.get("FRUITS_BUCKET"))
    parser.add_argument("--prefix", default=os.environ.get("FRUITS_INPUT_PREFIX"))
    parser.add_argument("--conn-id", default=os.environ.get("FRUITS_AWS_CONN_ID", "aws_default"))
    parser.add_argument(
        "--into-aws",
        action="store_true",
        help="upload even when the connection points at AWS (by default only a local S3)",
    )
    args = parser.parse_args(argv)
    if not args.bucket:
        parser.error("no bucket: pass --bucket or set FRUITS_BUCKET")
    if args.prefix is None:
        parser.error("no key prefix: pass --prefix or set FRUITS_INPUT_PREFIX")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    client = s3_client_from_airflow(args.conn_id)
    if is_aws_endpoint(client.meta.endpoint_url) and not args.into_aws:
        # The stack pointed at real AWS: its bucket holds the real image bank.
        log.info(
            "%s is AWS, not the stack's local S3: sample data not uploaded (--into-aws to do it)",
            client.meta.endpoint_url,
        )
        return 0
    uploaded, skipped = seed(client, args.bucket, args.prefix, Path(args.source))
    log.info(
        "s3://%s/%s: %d files uploaded, %d already there",
        args.bucket,
        args.prefix.strip("/"),
        uploaded,
        skipped,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
