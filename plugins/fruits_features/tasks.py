"""Task callables of the DAG (thin: the logic lives in the pure modules they call)."""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from fruits_features.checks import (
    Expected,
    InputCheckError,
    summarize_inputs,
    too_few_images,
    validate_output_folder,
)
from fruits_features.compute import compute_backend
from fruits_features.config import CoreSettings, config_at_run_time, config_from_snapshot
from fruits_features.job_package import artifact_files
from fruits_features.modes import MODES
from fruits_features.output_layout import RunFolder
from fruits_features.params import parse_run_params
from fruits_features.plan import build_plan
from fruits_features.remote_features import features_on_s3
from fruits_features.results import LEFT_ON_S3, prune_results
from fruits_features.run_identity import (
    last_success_record,
    parse_record,
    run_identity,
    sha256_file,
    unchanged_since,
)
from fruits_features.s3_io import download_prefix, list_keys, list_objects, s3_client
from fruits_features.s3_layout import listing_prefix, run_key, run_layout, s3_uri, split_s3_uri

log = logging.getLogger(__name__)

# Stable identity of the published PCA features; each event's extra says which run and where.
PCA_ASSET = Asset(name="fruits_features_pca", group="fruits-features")

# Transfers are idempotent and S3 hiccups happen; checks and cluster actions are not retried.
TRANSFER_RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=30)}


@task(multiple_outputs=True)
def check_inputs(dag_compute: str) -> dict[str, Any]:
    """Validate config and params, check the inputs and the run's prefix on S3, return the plan.

    ``dag_compute`` is the compute path the DAG was built with (chosen at parse time).
    """
    context = get_current_context()
    config = config_at_run_time()
    if config.compute != dag_compute:
        log.warning(
            "compute %r from a Variable is ignored: the DAG was built for %r "
            "(FRUITS_COMPUTE is read from the environment at parse time)",
            config.compute,
            dag_compute,
        )
        config = config.replace(CoreSettings, compute=dag_compute)
    dag_run = context["dag_run"]
    run_params = parse_run_params(context["params"], dag_run.conf)
    run_id = context["run_id"]
    key = run_key(run_id)
    layout = run_layout(config, run_params.mode, key)
    bucket = config.storage.bucket
    log.info(
        "Run %s: mode %s, K %s, limit %s, compute %s, bucket %s",
        run_id,
        run_params.mode,
        run_params.pca_components,
        run_params.limit,
        config.compute,
        bucket,
    )

    client = s3_client(config)
    if list_keys(client, bucket, layout.output_prefix):
        raise InputCheckError(
            f"{layout.output_uri}/ already holds objects: refusing to overwrite an earlier run"
        )
    results = config.results_path / run_params.mode / key
    if results.exists() and any(results.iterdir()):
        raise InputCheckError(f"{results} already exists: refusing to overwrite an earlier run")

    prefix = listing_prefix(config, run_params.mode)
    objects = list_objects(client, bucket, prefix)
    summary = summarize_inputs(objects, config, run_params.mode)
    # Named now, before any compute; the job lists them in errors/skipped.csv.
    for key, _, _, reason in summary.skipped:
        log.warning("Skipping s3://%s/%s: %s", bucket, key, reason)
    if summary.images == 0:
        raise InputCheckError(
            f"no image for mode {run_params.mode} under s3://{bucket}/{prefix}"
            " (expected Training/<class>/<image>.jpg|.jpeg|.png)"
        )
    planned = MODES[run_params.mode].planned_images(summary.images, run_params.limit)
    problem = too_few_images(planned, run_params.pca_components)
    if problem:
        raise InputCheckError(f"{problem} (mode {run_params.mode}, limit {run_params.limit})")
    log.info(
        "%d images available in %d classes, %d planned, %d files skipped",
        summary.images,
        len(summary.classes),
        planned,
        len(summary.skipped),
    )
    identity = run_identity(objects, run_params, config.project_path)
    if run_params.may_skip:
        last = _read_record(client, bucket, layout.last_success_key)
        if unchanged_since(identity, last):
            raise AirflowSkipException(
                f"Nothing changed since run {last['run_id']} (same images, code, weights and "
                f"parameters; its outputs: {last['output_uri']}/): skipped, no cluster or Spark "
                "started. Trigger with force: true to run anyway."
            )
    skipped = [(s3_uri(bucket, key), *rest) for key, *rest in summary.skipped]
    return build_plan(config, run_params, run_id, planned, skipped, identity)


def _read_record(client: Any, bucket: str, key: str) -> Any:
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    return parse_record(body.decode("utf-8", errors="replace"))


@task(**TRANSFER_RETRIES)
def upload_artifacts(plan: dict[str, Any]) -> dict[str, str]:
    """Upload entry point, job zip, bootstrap files and weights under the run's artifacts prefix."""
    config = config_from_snapshot(plan["config"])
    client = s3_client(config)
    digests: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fruits-artifacts-") as build_dir:
        files = artifact_files(config.project_path, Path(build_dir))
        for name, path in files.items():
            bucket, key = split_s3_uri(plan["artifacts"][name])
            client.upload_file(str(path), bucket, key)
            digests[name] = sha256_file(path)
            log.info(
                "Uploaded %s (%d bytes, sha256 %s) to s3://%s/%s",
                path,
                path.stat().st_size,
                digests[name],
                bucket,
                key,
            )
        # What check_inputs found the job cannot list itself, for the run's skipped.csv.
        bucket, key = split_s3_uri(plan["skipped_list"])
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=csv_text(["path", "label", "bytes", "reason"], plan["skipped_files"]).encode(),
        )
    return digests


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@task(**TRANSFER_RETRIES)
def download_outputs(plan: dict[str, Any]) -> str:
    """Copy the run's S3 prefix (all of it, or all but features/) to
    ``<results_dir>/<mode>/<run_key>/``; keep the last ``results_keep`` runs of the mode."""
    config = config_from_snapshot(plan["config"])
    target = Path(plan["results_dir"])
    target.parent.mkdir(parents=True, exist_ok=True)
    left_on_s3 = LEFT_ON_S3[plan["download"]]
    count = download_prefix(
        s3_client(config), plan["bucket"], plan["output_prefix"], target, left_on_s3
    )
    # Where this copy came from: what the report and the summary name, and the key the
    # results are pruned by (written last).
    RunFolder(target).source_marker.write_text(plan["output_uri"] + "\n", encoding="utf-8")
    log.info("Downloaded %d files from %s/ to %s", count, plan["output_uri"], target)
    if left_on_s3:
        log.info("Left on S3 (FRUITS_DOWNLOAD=%s): %s", plan["download"], ", ".join(left_on_s3))
    prune_results(target.parent, config.core.results_keep, target)
    return str(target)


@task
def validate_outputs(plan: dict[str, Any]) -> dict[str, Any]:
    """Check the downloaded outputs against the contract and the plan; fail the run if broken."""
    folder = Path(plan["results_dir"])
    expected = Expected(
        mode=plan["mode"],
        pca_components=plan["pca_components"],
        images_selected=plan["planned_images"],
        run_id=plan["run_id"],
        skipped_files=len(plan["skipped_files"]),
    )
    features = None
    if LEFT_ON_S3[plan["download"]]:
        config = config_from_snapshot(plan["config"])
        client = s3_client(config)
        features = features_on_s3(client, plan["bucket"], plan["output_prefix"])
        log.info("features/ checked on S3: %d rows in its Parquet footers", features.rows)
    report = validate_output_folder(folder, expected, features)
    log.info("Run %s valid: %s", plan["run_id"], report.summary())
    log.info("Outputs: %s/ (PCA: %s), local copy: %s", plan["output_uri"], plan["pca_uri"], folder)
    return {
        "images": report.images_selected,
        "errors": report.errors,
        "features": report.features,
        "variance_kept": report.variance_kept,
        "images_per_second": report.images_per_second,
        "duration_seconds": report.duration_seconds,
    }


@task(**TRANSFER_RETRIES)
def build_run_report(plan: dict[str, Any], compute: dict[str, Any] | None = None) -> str:
    """HTML report of the run (plots, quality, throughput, what the compute adds, e.g. cost),
    in the results and on S3. ``compute``: the backend segment's ``report_inputs``."""
    # matplotlib is heavy: import it when a report is built, not when the DAG is parsed.
    from fruits_features.report import build_report

    config = config_from_snapshot(plan["config"])
    section = compute_backend(plan["compute"]).report_section(plan, **(compute or {}))
    files = build_report(Path(plan["results_dir"]), compute=section, input_uri=plan["input_uri"])
    prefix = run_layout(config, plan["mode"], plan["run_key"]).report_prefix
    client = s3_client(config)
    for path in files.paths:
        client.upload_file(str(path), plan["bucket"], prefix + path.name)
    log.info(
        "Report: %s (on S3: s3://%s/%s%s)", files.html, plan["bucket"], prefix, files.html.name
    )
    return str(files.html)


@task(outlets=[PCA_ASSET])
def publish_pca(plan: dict[str, Any], report: dict[str, Any]) -> str:
    """Emit an asset event for the run's PCA output (its URI and summary in the extra)."""
    context = get_current_context()
    context["outlet_events"][PCA_ASSET].extra = {
        "uri": plan["pca_uri"],
        "output_uri": plan["output_uri"],
        "run_id": plan["run_id"],
        "mode": plan["mode"],
        "pca_components": plan["pca_components"],
        **report,
    }
    log.info("Published %s: %s", PCA_ASSET.name, plan["pca_uri"])
    # A later run over the same bank, code and parameters is skipped (no change, no cluster).
    config = config_from_snapshot(plan["config"])
    record = last_success_record(plan["identity"], plan)
    s3_client(config).put_object(
        Bucket=plan["bucket"],
        Key=plan["last_success_key"],
        Body=json.dumps(record, indent=2).encode(),
    )
    return plan["pca_uri"]
