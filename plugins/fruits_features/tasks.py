"""Task callables of the DAG: thin. What each decides lives in a module named for it
(input_check, run_identity, job_package, results, output_validation, report)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from fruits_features import lineage
from fruits_features.compute.registry import compute_backend
from fruits_features.config import CoreSettings, PipelineConfig
from fruits_features.input_check import check_run_inputs, claim_outputs, refuse_used_outputs
from fruits_features.job_invocation import shipped_jars
from fruits_features.job_package import upload_run_artifacts
from fruits_features.output_facts import facts_in_folder, facts_on_s3
from fruits_features.output_validation import Expected, OutputReport, validate_run
from fruits_features.plan import RunPlan, build_plan, results_folder
from fruits_features.results import ALL, download_run
from fruits_features.run_identity import (
    record_success,
    redundant_run,
    run_identity,
    skip_message,
)
from fruits_features.run_params import RunParams, parse_run_params
from fruits_features.s3 import RunS3Hook
from fruits_features.s3_layout import run_key, run_layout
from fruits_features.settings import config_at_run_time
from fruits_features.store_maintenance import check_maintenance

log = logging.getLogger(__name__)

# Stable identity of the published PCA features; each event's extra says which run and where.
PCA_ASSET = Asset(name="fruits_features_pca", group="fruits-features")

# Transfers are idempotent and S3 hiccups happen; checks and cluster actions are not retried.
TRANSFER_RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=30)}


def s3_of(plan: RunPlan) -> RunS3Hook:
    return RunS3Hook(aws_conn_id=plan.aws_conn_id, region_name=plan.region)


def run_config(dag_compute: str) -> PipelineConfig:
    """The settings at run time; the compute path stays the one the DAG was built with."""
    config = config_at_run_time()
    if config.compute != dag_compute:
        log.warning(
            "compute %r from a Variable is ignored: the DAG was built for %r "
            "(FRUITS_COMPUTE is read from the environment at parse time)",
            config.compute,
            dag_compute,
        )
        config = config.replace(CoreSettings, compute=dag_compute)
    return config


@task(multiple_outputs=True)
def check_inputs(dag_compute: str) -> dict[str, Any]:
    """Validate config and params, check the inputs and the run's prefix on S3, return the plan.

    ``dag_compute`` is the compute path the DAG was built with (chosen at parse time).
    """
    context = get_current_context()
    config, run_id = run_config(dag_compute), context["run_id"]
    params = parse_run_params(context["params"], context["dag_run"].conf)
    return plan_run(config, params, run_id).to_xcom()


def plan_run(config: PipelineConfig, params: RunParams, run_id: str) -> RunPlan:
    """check_inputs' work: the run's plan, or AirflowSkipException when nothing changed."""
    layout = run_layout(config, params.mode, run_key(run_id))
    log.info(
        "Run %s: mode %s, K %s, limit %s, compute %s, bucket %s",
        *(run_id, params.mode, params.pca_components, params.limit, config.compute),
        layout.bucket,
    )
    s3 = RunS3Hook(aws_conn_id=config.storage.aws_conn_id, region_name=config.storage.region)
    refuse_used_outputs(s3, layout, results_folder(config, params.mode, layout.run_key))
    inputs = check_run_inputs(s3, layout, params, config.storage.inventory_uri or None)
    identity = run_identity(inputs.listing_sha256, params, config.project_path)
    if params.may_skip and (last := redundant_run(s3, layout, identity)):
        raise AirflowSkipException(skip_message(last))
    maintain = check_maintenance(s3, layout, config.store.feature_store_maintenance_days)
    remote = compute_backend(config.compute).remote_driver
    plan = build_plan(
        config,
        params,
        run_id,
        inputs.planned_images,
        skipped_files=inputs.skipped,
        identity=identity,
        maintain=maintain,
        inventory=inputs.inventory,
        lineage=lineage.plan_conf(remote=remote, jar_uri=layout.artifact_uri(lineage.JAR_ARTIFACT)),
        jars=tuple(layout.artifact_uri(jar.name) for jar in shipped_jars()) if remote else (),
    )
    claim_outputs(s3, layout, plan.deployment, run_id, plan.run_token)
    return plan.with_backend(compute_backend(config.compute).plan_section(config, plan))


@task(**TRANSFER_RETRIES)
def upload_artifacts(plan: dict[str, Any]) -> dict[str, str]:
    """Upload entry point, job zip, bootstrap files, weights and the jars a cluster's driver
    needs under the run's artifacts prefix; returns their SHA-256."""
    run = RunPlan.from_xcom(plan)
    extra = {jar.name: jar for jar in shipped_jars()} if run.jars else {}
    if lineage.shipped_jar(run.lineage):
        extra[lineage.JAR_ARTIFACT] = lineage.local_jars()[0]
    return upload_run_artifacts(s3_of(run), run.layout, Path(run.project_dir), extra)


@task(**TRANSFER_RETRIES)
def download_outputs(plan: dict[str, Any]) -> str:
    """Copy the run's summary (or all of it: FRUITS_DOWNLOAD) to
    ``<results_dir>/<mode>/<run_key>/``; keep the last ``results_keep`` runs of the mode."""
    run = RunPlan.from_xcom(plan)
    download_run(s3_of(run), run.layout, run.results_path, run.download, run.results_keep)
    return run.results_dir


@task
def validate_outputs(plan: dict[str, Any]) -> dict[str, Any]:
    """Check the run's outputs against the contract and the plan; fail the run if broken.

    The record and summary are read in the download, the data sets from their part files'
    ends: on S3, or in the download when it holds them (every CSV row counted then)."""
    run = RunPlan.from_xcom(plan)
    report = check_outputs(run)
    log.info("Run %s valid: %s", run.run_id, report.summary())
    layout = run.layout
    log.info(
        "Outputs: %s/ (PCA: %s), local copy: %s", layout.output_uri, layout.pca_uri, run.results_dir
    )
    return report.as_xcom()


def check_outputs(run: RunPlan) -> OutputReport:
    """validate_outputs' work: the run's outputs checked, or OutputValidationError."""
    layout, params = run.layout, run.params
    expected = Expected(
        mode=params.mode,
        pca_components=params.pca_components,
        images_selected=run.planned_images,
        run_id=run.run_id,
        skipped_files=run.skipped_files,
    )
    if run.download == ALL:
        facts = facts_in_folder(run.results_path)
    else:
        facts = facts_on_s3(s3_of(run), layout.bucket, layout.output_prefix)
    parts = sum(f.parquet_parts + f.csv_parts for f in facts.values())
    log.info("Data sets checked from the ends of %d part files (%s)", parts, run.download)
    return validate_run(run.results_path, expected, facts)


@task(**TRANSFER_RETRIES)
def build_run_report(plan: dict[str, Any], compute: dict[str, Any] | None = None) -> str:
    """HTML report of the run (plots, quality, throughput, what the compute adds, e.g. cost),
    in the results and on S3. ``compute``: the backend segment's ``report_inputs``."""
    # matplotlib is heavy: import it when a report is built, not when the DAG is parsed.
    from fruits_features.report import build_report

    run = RunPlan.from_xcom(plan)
    facts = compute_backend(run.compute).report_section(run, **(compute or {}))
    files = build_report(run.results_path, compute=facts, input_uri=run.layout.input_uri)
    upload_report(run, files.paths)
    log.info("Report: %s (on S3: %s)", files.html, run.layout.report_uri)
    return str(files.html)


def upload_report(run: RunPlan, paths: Iterable[Path]) -> None:
    """A report's files to the run's report folder on S3 (``RunLayout.report_uri``)."""
    s3 = s3_of(run)
    for path in paths:
        s3.conn.upload_file(str(path), run.layout.bucket, run.layout.report_prefix + path.name)


@task(trigger_rule="one_failed", **TRANSFER_RETRIES)
def report_failure() -> str:
    """The report of a failed run, where its report would have been: which task failed and
    the job's own error, as the tasks' failure callbacks recorded them."""
    from fruits_features.alert_callbacks import FAILURE_XCOM, run_plan
    from fruits_features.report.failure import build_failure_report

    context = get_current_context()
    ti = context["ti"]
    run = run_plan(ti)
    if run is None:
        raise AirflowSkipException("check_inputs made no plan: its own log holds the error")
    failures = [
        record
        for task_id in sorted(context["dag"].task_ids)
        if (record := ti.xcom_pull(task_ids=task_id, key=FAILURE_XCOM))
    ]
    paths = build_failure_report(
        run.results_path / "report", run_id=run.run_id, mode=run.params.mode, failures=failures
    )
    upload_report(run, paths)
    log.error(
        "Run %s failed in %s; its report: %s (on S3: %s)",
        run.run_id,
        ", ".join(f["task"] for f in failures) or "a task that recorded no error",
        paths[0],
        run.layout.report_uri,
    )
    return str(paths[0])


@task(outlets=[PCA_ASSET])
def publish_pca(plan: dict[str, Any], report: dict[str, Any]) -> str:
    """Emit an asset event for the run's PCA output (its URI and summary in the extra), and
    record the run as its mode's last success (a later unchanged run is skipped)."""
    run = RunPlan.from_xcom(plan)
    layout, params = run.layout, run.params
    context = get_current_context()
    context["outlet_events"][PCA_ASSET].extra = {
        "uri": layout.pca_uri,
        "output_uri": layout.output_uri,
        "run_id": run.run_id,
        "mode": params.mode,
        "pca_components": params.pca_components,
        **report,
    }
    log.info("Published %s: %s", PCA_ASSET.name, layout.pca_uri)
    record_success(s3_of(run), run)
    return layout.pca_uri
