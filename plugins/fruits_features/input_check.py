"""Whether the bank and the run's prefixes can make the requested run, decided before any
compute: the images a mode can select, the files it will skip (by the input rule), a digest
of the listing for the no-change check, and the run's outputs never landing on an earlier
run's.

The bank is read as a stream, page by page (an S3 listing) or batch by batch (an S3
Inventory report's Parquet data files): time grows with the bank, memory does not. What is
kept is counts per class, a digest and the first few skipped files, for the log.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fruits_contract.input_rule import classify
from fruits_contract.job_request import too_few_images
from fruits_contract.modes import Mode
from fruits_features.run_identity import ListingDigest
from fruits_features.run_params import RunParams
from fruits_features.s3 import RunS3Hook
from fruits_features.s3_layout import RunLayout, s3_uri, split_s3_uri, training_relative

log = logging.getLogger(__name__)

# Skipped files named in check_inputs' log; the job lists every one in skipped/.
NAMED_IN_LOG = 20
# An inventory report's folder per delivery: <config prefix>/YYYY-MM-DDTHH-MMZ/manifest.json.
DELIVERY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z")


class InputCheckError(ValueError):
    """The input data cannot make a run of the requested mode."""


@dataclass
class InputSummary:
    """What a pass over the bank's listing found."""

    classes: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    first_skipped: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    digest: ListingDigest = field(default_factory=ListingDigest)

    @property
    def images(self) -> int:
        return sum(self.classes.values())

    def add(self, key: str, size: int, etag: str, relative: str | None, mode: Mode) -> None:
        self.digest.add(key, size, etag)
        if relative is None:
            return
        label, reason = classify(relative)
        if reason is not None:
            self.skipped += 1
            if len(self.first_skipped) < NAMED_IN_LOG:
                self.first_skipped.append((key, reason))
        elif mode.selects(label):
            self.classes[label] += 1


def summarize_inputs(
    objects: Iterable[Mapping[str, Any]], input_prefix: str, mode: Mode
) -> InputSummary:
    """One pass over listed S3 objects (boto3's Key, Size, ETag): the images a mode can
    select, the files the run skips, the listing's digest."""
    summary = InputSummary()
    for obj in objects:
        key = obj["Key"]
        relative = training_relative(key, input_prefix)
        summary.add(key, int(obj.get("Size", 0)), obj.get("ETag", ""), relative, mode)
    return summary


@dataclass(frozen=True)
class RunInputs:
    """What check_inputs found: the images the job will select, the files it will skip, the
    listing's digest, and the inventory manifest the job reads the listing from (if any)."""

    planned_images: int
    skipped: int
    listing_sha256: str
    inventory: str | None = None


def refuse_used_outputs(s3: RunS3Hook, layout: RunLayout, results: Path) -> None:
    """A run never writes over an earlier run: its S3 prefix and its local copy must be new."""
    if next(s3.iter_objects(layout.bucket, layout.output_prefix), None) is not None:
        raise InputCheckError(
            f"{layout.output_uri}/ already holds objects: refusing to overwrite an earlier run"
        )
    if results.exists() and any(results.iterdir()):
        raise InputCheckError(f"{results} already exists: refusing to overwrite an earlier run")


def claim_outputs(
    s3: RunS3Hook, layout: RunLayout, deployment: str, run_id: str, run_token: str
) -> None:
    """Make the run's prefix this run's, once: two deployments sharing a bucket and an output
    prefix, on one schedule, plan the same prefix and both find it empty. The first claim
    wins; a later check of the same run (a retry, a cleared run) keeps it."""
    claim = {"deployment": deployment, "run_id": run_id, "run_token": run_token}
    text = json.dumps(claim)
    if s3.create_text(layout.bucket, layout.claim_key, text):
        return
    held = s3.read_text(layout.bucket, layout.claim_key) or "{}"
    try:
        owner = json.loads(held)
    except ValueError:
        owner = {}
    if (owner.get("deployment"), owner.get("run_id")) == (deployment, run_id):
        s3.put_text(layout.bucket, layout.claim_key, text)
        return
    raise InputCheckError(
        f"{layout.output_uri}/ is claimed by run {owner.get('run_id')} of deployment "
        f"{owner.get('deployment')} (s3://{layout.bucket}/{layout.claim_key}): deployments "
        "sharing a bucket need their own FRUITS_OUTPUT_PREFIX (and each its FRUITS_DEPLOYMENT)"
    )


def newest_manifest(s3: RunS3Hook, inventory: str) -> str:
    """The manifest.json of an inventory configuration's newest delivery."""
    bucket, prefix = split_s3_uri(inventory.rstrip("/") + "/")
    pages = s3.conn.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    )
    deliveries = [
        p["Prefix"]
        for page in pages
        for p in page.get("CommonPrefixes", [])
        if DELIVERY.fullmatch(p["Prefix"][len(prefix) :].rstrip("/"))
    ]
    if not deliveries:
        raise InputCheckError(f"no inventory report under {inventory} (FRUITS_INVENTORY_URI)")
    return s3_uri(bucket, max(deliveries) + "manifest.json")


def inventory_objects(s3: RunS3Hook, manifest_uri: str, prefix: str) -> Iterator[dict[str, Any]]:
    """The inventoried objects under ``prefix``, as boto3 lists them (Key, Size, ETag): each
    data file of the report fetched and read batch by batch, one at a time."""
    import pyarrow.parquet as pq

    bucket, key = split_s3_uri(manifest_uri)
    manifest = json.loads(s3.read_text(bucket, key) or "{}")
    if str(manifest.get("fileFormat", "")).lower() != "parquet":
        raise InputCheckError(f"{manifest_uri}: not a Parquet inventory report")
    destination = manifest["destinationBucket"].rsplit(":", 1)[-1]
    for data in manifest["files"]:
        with tempfile.NamedTemporaryFile(suffix=".parquet") as local:
            s3.conn.download_file(destination, data["key"], local.name)
            report = pq.ParquetFile(local.name)
            columns = [c for c in ("key", "size", "e_tag") if c in report.schema_arrow.names]
            for batch in report.iter_batches(columns=columns, batch_size=65_536):
                rows = batch.to_pydict()
                for index, name in enumerate(rows["key"]):
                    if name.startswith(prefix) and not name.endswith("/"):
                        size = rows["size"][index] if "size" in rows else 0
                        etag = rows["e_tag"][index] if "e_tag" in rows else ""
                        yield {"Key": name, "Size": size, "ETag": etag or ""}


def check_run_inputs(
    s3: RunS3Hook, layout: RunLayout, params: RunParams, inventory: str | None = None
) -> RunInputs:
    """Read the mode's part of the bank (its S3 listing, or the newest inventory report)
    and refuse a run it cannot make, in the job's words."""
    prefix = layout.listing_prefix
    manifest = newest_manifest(s3, inventory) if inventory else None
    if manifest:
        log.info("Reading the bank's listing from the inventory report %s", manifest)
        objects = inventory_objects(s3, manifest, prefix)
    else:
        objects = s3.iter_objects(layout.bucket, prefix)
    summary = summarize_inputs(objects, layout.input_prefix, params.spec)
    for key, reason in summary.first_skipped:
        log.warning("Skipping s3://%s/%s: %s", layout.bucket, key, reason)
    if summary.skipped > len(summary.first_skipped):
        log.warning("... and %d more files to skip", summary.skipped - len(summary.first_skipped))
    if summary.images == 0:
        raise InputCheckError(
            f"no image for mode {params.mode} under s3://{layout.bucket}/{prefix}"
            " (expected Training/<class>/<image>.jpg|.jpeg|.png)"
        )
    planned = params.spec.planned_images(summary.images, params.limit)
    problem = too_few_images(planned, params.pca_components)
    if problem:
        raise InputCheckError(f"{problem} (mode {params.mode}, limit {params.limit})")
    log.info(
        "%d images available in %d classes, %d planned, %d files skipped",
        summary.images,
        len(summary.classes),
        planned,
        summary.skipped,
    )
    return RunInputs(planned, summary.skipped, summary.digest.hexdigest(), manifest)
