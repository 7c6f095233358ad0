"""Whether the bank and the run's prefixes can make the requested run, decided before any
compute: the images a mode can select, the files it will skip (by the input rule), and
the run's outputs never landing on an earlier run's."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fruits_contract.input_rule import classify
from fruits_contract.job_request import too_few_images
from fruits_contract.modes import Mode
from fruits_features.run_params import RunParams
from fruits_features.s3 import RunS3Hook
from fruits_features.s3_layout import RunLayout, s3_uri, training_relative

log = logging.getLogger(__name__)


class InputCheckError(ValueError):
    """The input data cannot make a run of the requested mode."""


@dataclass(frozen=True)
class InputSummary:
    images: int
    classes: dict[str, int] = field(default_factory=dict)
    # The files the run will not process: (key, label, bytes, reason), by the input rule.
    skipped: list[tuple[str, str, int, str]] = field(default_factory=list)


def summarize_inputs(
    objects: Iterable[Mapping[str, Any]], input_prefix: str, mode: Mode
) -> InputSummary:
    """The images a mode can select among listed S3 objects, and the files the run skips."""
    per_class: Counter[str] = Counter()
    skipped = []
    for obj in objects:
        key = obj["Key"]
        relative = training_relative(key, input_prefix)
        if relative is None:
            continue
        label, reason = classify(relative)
        if reason is not None:
            skipped.append((key, label or "", int(obj.get("Size", 0)), reason))
        elif mode.selects(label):
            per_class[label] += 1
    return InputSummary(
        images=sum(per_class.values()),
        classes=dict(sorted(per_class.items())),
        skipped=sorted(skipped),
    )


@dataclass(frozen=True)
class RunInputs:
    """What check_inputs found: the bank's listing, the images the job will select, and the
    files it will skip as (S3 URI, label, bytes, reason)."""

    objects: list[dict[str, Any]]
    planned_images: int
    skipped: list[tuple[str, str, int, str]]


def refuse_used_outputs(s3: RunS3Hook, layout: RunLayout, results: Path) -> None:
    """A run never writes over an earlier run: its S3 prefix and its local copy must be new."""
    if s3.object_keys(layout.bucket, layout.output_prefix):
        raise InputCheckError(
            f"{layout.output_uri}/ already holds objects: refusing to overwrite an earlier run"
        )
    if results.exists() and any(results.iterdir()):
        raise InputCheckError(f"{results} already exists: refusing to overwrite an earlier run")


def check_run_inputs(s3: RunS3Hook, layout: RunLayout, params: RunParams) -> RunInputs:
    """List the mode's part of the bank and refuse a run it cannot make, in the job's words;
    name the files it will skip (the job lists them in errors/skipped.csv)."""
    prefix = layout.listing_prefix
    objects = s3.list_objects(layout.bucket, prefix)
    summary = summarize_inputs(objects, layout.input_prefix, params.spec)
    for key, _, _, reason in summary.skipped:
        log.warning("Skipping s3://%s/%s: %s", layout.bucket, key, reason)
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
        len(summary.skipped),
    )
    skipped = [(s3_uri(layout.bucket, key), *rest) for key, *rest in summary.skipped]
    return RunInputs(objects, planned, skipped)
