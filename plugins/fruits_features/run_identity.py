"""No change, no cluster: whether a run would only redo the last successful run of its mode.

A run's identity is what its outputs depend on: the bank as listed (key, size and ETag of
every object under the mode's prefix), what it runs (SHA-256 of the job's code, bootstrap,
requirements and weights) and its parameters. ``publish_pca`` records the identity of each
successful run beside the mode's runs (``_last_success.json``), with a digest of the
outputs it published; ``check_inputs`` skips a run whose identity is the same while those
outputs are still all there, before anything is uploaded or started, unless the run asks
for ``force`` (or ``reuse_features: false``, a deliberate recompute).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fruits_features.job_package import package_files, sha256_file, source_files
from fruits_features.plan import RunPlan
from fruits_features.run_params import RunParams
from fruits_features.s3 import RunS3Hook
from fruits_features.s3_layout import RunLayout

log = logging.getLogger(__name__)


class ListingDigest:
    """A digest of listed objects (key, size, ETag), whatever their order, in constant
    memory: the sum, modulo 2**256, of each object's SHA-256. Any object added, removed or
    changed changes it; it needs no sort of the listing, which may hold millions of keys."""

    MODULUS = 1 << 256

    def __init__(self) -> None:
        self.total = 0

    def add(self, key: str, size: int, etag: str) -> None:
        line = f"{key}\0{size}\0{etag}\n".encode()
        self.total = (self.total + int.from_bytes(hashlib.sha256(line).digest())) % self.MODULUS

    def hexdigest(self) -> str:
        return f"{self.total:064x}"


def listing_digest(objects: Iterable[Mapping[str, Any]]) -> str:
    """The ListingDigest of listed objects (boto3's Key, Size, ETag)."""
    digest = ListingDigest()
    for obj in objects:
        digest.add(obj["Key"], int(obj["Size"]), obj.get("ETag", ""))
    return digest.hexdigest()


def file_digest(paths: Mapping[str, Path]) -> str:
    """SHA-256 over the named files' SHA-256, by name."""
    lines = (f"{name}\0{sha256_file(path)}\n" for name, path in sorted(paths.items()))
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def run_identity(listing_sha256: str, params: RunParams, project_dir: Path) -> dict[str, Any]:
    """What a run's outputs depend on, as a JSON value: the bank's listing (its digest),
    what the run ships, and its params."""
    artifacts = {**source_files(project_dir), **package_files(project_dir)}
    return {
        "listing_sha256": listing_sha256,
        "artifacts_sha256": file_digest(artifacts),
        "params": {
            "mode": params.mode,
            "pca_components": params.pca_components,
            "limit": params.limit,
            "engine": params.engine,
            "export_features": params.exports,
        },
    }


def outputs_digest(s3: RunS3Hook, output_uri: str) -> str:
    """The ListingDigest of every object under a run's output prefix (its parts, not
    their bytes: one listing, ∝ the part files)."""
    bucket, prefix = s3.parse_s3_url(output_uri)
    return listing_digest(s3.iter_objects(bucket, prefix.rstrip("/") + "/"))


def last_success_record(plan: RunPlan, outputs_sha256: str | None = None) -> dict[str, Any]:
    """What ``_last_success.json`` holds: the identity, where that run's outputs are and
    the digest of what was there when it was published."""
    return {
        "identity": dict(plan.identity or {}),
        "run_id": plan.run_id,
        "output_uri": plan.layout.output_uri,
        "outputs_sha256": outputs_sha256,
    }


def record_success(s3: RunS3Hook, plan: RunPlan) -> None:
    """Write the run's record as its mode's last success (its outputs are all written)."""
    layout = plan.layout
    record = last_success_record(plan, outputs_digest(s3, layout.output_uri))
    s3.put_text(layout.bucket, layout.last_success_key, json.dumps(record, indent=2))


def redundant_run(
    s3: RunS3Hook, layout: RunLayout, identity: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The last success this run would only redo: the same identity, its outputs still as
    they were published. None: run (outputs deleted by hand or expired by a lifecycle rule
    are made again, not pointed at)."""
    last = unchanged_since(identity, last_success(s3, layout))
    if last is None:
        return None
    recorded = last.get("outputs_sha256")  # None in a record of an earlier version: run
    if not recorded or recorded != outputs_digest(s3, str(last.get("output_uri"))):
        log.warning(
            "Nothing changed since run %s, but its outputs at %s/ are no longer complete "
            "(deleted, or expired by a lifecycle rule): running again.",
            last.get("run_id"),
            last.get("output_uri"),
        )
        return None
    return last


def last_success(s3: RunS3Hook, layout: RunLayout) -> Mapping[str, Any] | None:
    """The mode's last success record; None when there is none or it cannot be read."""
    text = s3.read_text(layout.bucket, layout.last_success_key)
    return None if text is None else parse_record(text)


def skip_message(last: Mapping[str, Any]) -> str:
    return (
        f"Nothing changed since run {last['run_id']} (same images, code, weights and "
        f"parameters; its outputs: {last['output_uri']}/): skipped, no cluster or Spark "
        "started. Trigger with force: true to run anyway."
    )


def unchanged_since(
    identity: Mapping[str, Any], last: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The last success's record when this run would redo it, else None."""
    if last is not None and last.get("identity") == identity:
        return last
    return None


def parse_record(text: str) -> Mapping[str, Any] | None:
    """A ``_last_success.json``; None (run) when it cannot be read: never skip on doubt."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
