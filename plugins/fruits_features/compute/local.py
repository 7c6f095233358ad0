"""Local compute backend: the same Spark job, run by spark-submit next to Airflow instead of EMR.

For development, demos and tests: no AWS account needed when S3 is a local server. The job
reads the bank and writes its outputs and the feature store on S3 in place, through S3A
(hadoop-aws, fetched by `make setup`), as it does through EMRFS on a cluster: nothing is
copied to the worker but the job's code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any, ClassVar

from fruits_features import lineage
from fruits_features.alerts import announce_overdue
from fruits_features.compute.base import Segment
from fruits_features.compute.spark_process import run_streaming
from fruits_features.config import PipelineConfig, SettingsGroup, matching, setting
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
    ] = setting(
        "2g",
        "heap of the local Spark driver, which in local mode is also the executors' (the "
        "computed features are cached on disk, not in it)",
    )


def staging_root() -> Path:
    """Where runs stage the job's code: the user's own cache ($XDG_CACHE_HOME or ~/.cache),
    not the shared /tmp, where another account could rename what a run is about to run."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fruits-features" / "staging"


@contextlib.contextmanager
def work_folder(run_key: str, root: Path | None = None) -> Iterator[Path]:
    """A run's working folder (the job's code), in a root only this user can write, removed
    when it ends; folders of tasks that died (their process is gone) are removed first, so
    killed runs never pile up."""
    root = root or staging_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = root.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PermissionError(
            f"{root} is writable by other users: the job's code is not staged there "
            "(make it yours, mode 0700, or set XDG_CACHE_HOME)"
        )
    for folder in root.iterdir():
        owner = folder.name.rsplit(".", 1)[-1]
        if owner.isdigit() and not _alive(int(owner)):
            log.info("Removing the working folder of a task that died: %s", folder)
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


def stage_artifacts(s3: RunS3Hook, uris: list[str], target: Path) -> dict[str, Path]:
    """Download the run's artifacts (s3:// URIs) into ``target``: their local paths by URI."""
    local = {}
    for uri in uris:
        bucket, key = split_s3_uri(uri)
        s3.download_keys(bucket, [key], key.rsplit("/", 1)[0] + "/", target)
        local[uri] = target / key.rsplit("/", 1)[-1]
    return local


def submit_locally(
    plan: RunPlan,
    planned: JobInvocation,
    datasets: tuple[list[str], list[str]],
    *,
    watch_deadline: bool = False,
) -> float:
    """Run a program of the job's package with local Spark on the run's S3, streaming its
    output into the task's log; its duration in seconds. ``datasets``: the URIs it reads
    and writes, the task's lineage when lineage is on; ``watch_deadline``: announce it
    overdue past the plan's deadline."""
    section = plan.backend["local"]
    s3 = RunS3Hook(aws_conn_id=plan.aws_conn_id, region_name=plan.region)
    access = s3.access()
    spark_conf, jars = {**planned.spark_conf, **access.spark_conf()}, []
    if lineage.is_on(planned.spark_conf):
        from airflow.sdk import get_current_context

        # The job's events name this task's run as their parent; the task's own name the
        # datasets, the bank included (the job reads the photos in Python, unseen by Spark).
        spark_conf.update(lineage.parent_conf(get_current_context()))
        jars = lineage.local_jars()
        lineage.record_datasets(s3, *datasets)
    with work_folder(plan.layout.run_key) as work:
        code = stage_artifacts(s3, [planned.entry_point, planned.job_zip], work)
        invocation = replace(
            planned,
            entry_point=str(code[planned.entry_point]),
            job_zip=str(code[planned.job_zip]),
            spark_conf=spark_conf,
        )
        command, env = local_spark_submit(
            invocation,
            master=section["master"],
            driver_memory=section["driver_memory"],
            extra_jars=jars,
        )
        log.info("Running: %s", " ".join(command))
        overdue = plan.deadline if watch_deadline else None
        started = time.monotonic()
        run_streaming(
            command,
            {**env, **access.environment()},
            section["timeout_seconds"],
            lambda line: log.info("%s", line),
            deadline=overdue and (overdue["seconds"], partial(announce_overdue, overdue)),
        )
    return time.monotonic() - started


def run_locally(plan_xcom: dict[str, Any]) -> dict[str, Any]:
    """Run the job with local Spark; it reads and writes the run's S3 in place."""
    plan = RunPlan.from_xcom(plan_xcom)
    layout = plan.layout
    datasets = [layout.input_uri], [layout.output_uri, layout.feature_store_uri, layout.pca_uri]
    job = JobInvocation.from_dict(plan.backend["local"]["job"])
    seconds = submit_locally(plan, job, datasets, watch_deadline=True)
    log.info("Spark job finished in %.1f s; outputs in %s/", seconds, plan.layout.output_uri)
    return {"spark_seconds": round(seconds, 1)}


def maintain_locally(plan_xcom: dict[str, Any]) -> dict[str, Any]:
    """The feature store's maintenance with local Spark, when check_inputs found it due."""
    from airflow.sdk.exceptions import AirflowSkipException

    plan = RunPlan.from_xcom(plan_xcom)
    if not plan.maintain:
        raise AirflowSkipException("the feature store's maintenance is not due")
    store = plan.layout.feature_store_uri
    seconds = submit_locally(plan, plan.maintenance_invocation(), ([store], [store]))
    log.info("Feature store maintained in %.1f s: %s/", seconds, plan.layout.maintenance_uri)
    return {"spark_seconds": round(seconds, 1)}


class LocalBackend:
    name = "local"
    settings = LocalSettings
    remote_driver = False

    def plan_section(self, config: PipelineConfig, plan: RunPlan) -> dict[str, Any]:
        settings: LocalSettings = config.group(LocalSettings)
        return {
            "local": {
                "job": plan.invocation().to_dict(),
                "master": settings.local_spark_master,
                "driver_memory": settings.local_spark_driver_memory,
                "timeout_seconds": config.core.step_timeout_seconds,
            }
        }

    def segment(self, plan: Any) -> Segment:
        from airflow.sdk import task

        job = task(task_id="run_spark_locally")(run_locally)(plan)
        maintenance = task(task_id="maintain_feature_store")(maintain_locally)(plan)
        job >> maintenance
        return Segment(start=job, end=job)

    def report_section(self, plan: RunPlan, **inputs: Any) -> None:
        return None


BACKEND = LocalBackend()
