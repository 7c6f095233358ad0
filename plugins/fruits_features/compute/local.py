"""Local compute backend: the same Spark job, run by spark-submit next to Airflow instead of EMR.

For development, demos and tests: no AWS account needed when S3 is a local server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar

from fruits_contract.modes import MODES
from fruits_features.compute.base import Segment
from fruits_features.compute.spark_process import run_streaming
from fruits_features.config import NonEmpty, PipelineConfig, SettingsGroup, matching, setting
from fruits_features.job_invocation import JobInvocation, local_spark_submit
from fruits_features.plan import RunPlan
from fruits_features.s3 import RunS3Hook
from fruits_features.s3_layout import split_s3_uri

log = logging.getLogger(__name__)


class LocalSettings(SettingsGroup):
    title: ClassVar[str] = "Local compute (`FRUITS_COMPUTE=local`)"

    local_spark_master: Annotated[
        str, matching(r"local(\[(\*|\d+)(,\d+)?\])?", "'local', 'local[N]' or 'local[*]'")
    ] = setting("local[2]", "Spark master of the local compute")
    local_spark_driver_memory: Annotated[
        str, matching(r"\d+[mg]", "a JVM memory size such as '2g' or '1536m'")
    ] = setting("2g", "heap of the local Spark driver (it also holds the cached features)")
    local_feature_store_dir: NonEmpty = setting(
        "var/feature-store",
        "feature store of local runs (relative: to the project dir; see Incremental runs)",
    )


STAGING_ROOT = Path(tempfile.gettempdir()) / "fruits-features-staging"


@contextlib.contextmanager
def staging_folder(run_key: str, root: Path = STAGING_ROOT) -> Iterator[Path]:
    """A run's working folder, removed when it ends; folders of tasks that died (their
    process is gone) are removed first, so killed runs never pile up."""
    root.mkdir(parents=True, exist_ok=True)
    for folder in root.iterdir():
        owner = folder.name.rsplit(".", 1)[-1]
        if owner.isdigit() and not _alive(int(owner)):
            log.info("Removing the staging folder of a task that died: %s", folder)
            shutil.rmtree(folder, ignore_errors=True)
    folder = root / f"{run_key}.{os.getpid()}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def stage_inputs(s3: RunS3Hook, bucket: str, input_prefix: str, mode: str, target: Path) -> int:
    """Copy what the job lists on S3 for a mode to ``<target>/Training/``, each file with its
    S3 modification time: the images, and the files the job reports as skipped (not images,
    hidden-looking names, names with ':'), so it sees on disk what it would see on S3."""
    root = input_prefix.strip("/") + "/"
    objects = s3.list_objects(bucket, f"{root}Training/{MODES[mode].class_prefix}")
    return s3.download_objects(bucket, objects, root, target)


def stage_artifacts(s3: RunS3Hook, uris: list[str], target: Path) -> dict[str, Path]:
    """Download the run's artifacts (s3:// URIs) into ``target``: their local paths by URI."""
    local = {}
    for uri in uris:
        bucket, key = split_s3_uri(uri)
        s3.download_keys(bucket, [key], key.rsplit("/", 1)[0] + "/", target)
        local[uri] = target / key.rsplit("/", 1)[-1]
    return local


def run_locally(plan_xcom: dict[str, Any]) -> dict[str, Any]:
    """Stage inputs and artifacts from S3, run the job with local Spark, upload its outputs."""
    plan = RunPlan.from_xcom(plan_xcom)
    section, layout = plan.backend["local"], plan.layout
    s3 = RunS3Hook(aws_conn_id=plan.aws_conn_id, region_name=plan.region)
    with staging_folder(layout.run_key) as work:
        started = time.monotonic()
        staged = stage_inputs(s3, layout.bucket, layout.input_prefix, layout.mode, work / "input")
        log.info("Staged %d files in %.1f s", staged, time.monotonic() - started)
        planned = JobInvocation.from_dict(section["job"])
        request = planned.request
        artifacts = stage_artifacts(
            s3,
            [planned.entry_point, planned.job_zip, request.weights_uri, request.also_skipped],
            work / "artifacts",
        )
        output = work / "output"
        invocation = JobInvocation(
            entry_point=str(artifacts[planned.entry_point]),
            job_zip=str(artifacts[planned.job_zip]),
            # The job reads the staged copy; its outputs name the bank and the run's prefix.
            request=request.moved(
                input_uri=str(work / "input"),
                output_uri=str(output),
                weights_uri=str(artifacts[request.weights_uri]),
                also_skipped=str(artifacts[request.also_skipped]),
                input_as=request.input_uri,
                output_as=request.output_uri,
                weights_as=request.weights_uri,
            ),
            spark_conf=planned.spark_conf,
        )
        command, env = local_spark_submit(
            invocation, master=section["master"], driver_memory=section["driver_memory"]
        )
        log.info("Running: %s", " ".join(command))
        started = time.monotonic()
        run_streaming(command, env, section["timeout_seconds"], lambda line: log.info("%s", line))
        seconds = time.monotonic() - started
        log.info("Spark job finished in %.1f s", seconds)
        uploaded = s3.upload_folder(output, layout.bucket, layout.output_prefix)
        log.info("Uploaded %d files to %s/", uploaded, layout.output_uri)
    return {"staged_files": staged, "spark_seconds": round(seconds, 1), "files": uploaded}


class LocalBackend:
    name = "local"
    settings = LocalSettings

    def plan_section(self, config: PipelineConfig, plan: RunPlan) -> dict[str, Any]:
        settings: LocalSettings = config.group(LocalSettings)
        return {
            "local": {
                # The job keeps its features next to Airflow, where it runs (EMR's are on S3).
                "job": plan.invocation(
                    feature_store=str(config.project_relative(settings.local_feature_store_dir))
                ).to_dict(),
                "master": settings.local_spark_master,
                "driver_memory": settings.local_spark_driver_memory,
                "timeout_seconds": config.core.step_timeout_seconds,
            }
        }

    def segment(self, plan: Any) -> Segment:
        from airflow.sdk import task

        run_spark_locally = task(task_id="run_spark_locally")(run_locally)
        job = run_spark_locally(plan)
        return Segment(start=job, end=job)

    def report_section(self, plan: RunPlan, **inputs: Any) -> None:
        return None


BACKEND = LocalBackend()
