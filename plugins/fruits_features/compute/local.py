"""Local compute backend: the same Spark job, run by spark-submit next to Airflow instead of EMR.

For development, demos and tests: no AWS account needed when S3 is a local server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar

from fruits_features.compute.base import Segment
from fruits_features.config import PipelineConfig, SettingsGroup, matching, setting
from fruits_features.job_invocation import JobInvocation, local_spark_submit
from fruits_features.modes import MODES
from fruits_features.s3_layout import (
    ENTRY_POINT_NAME,
    JOB_ZIP_NAME,
    WEIGHTS_NAME,
    image_class,
    listing_prefix,
    split_s3_uri,
)

log = logging.getLogger(__name__)


class LocalSettings(SettingsGroup):
    title: ClassVar[str] = "Local compute (`FRUITS_COMPUTE=local`)"

    local_spark_master: Annotated[
        str, matching(r"local(\[(\*|\d+)(,\d+)?\])?", "'local', 'local[N]' or 'local[*]'")
    ] = setting("local[2]", "Spark master of the local compute")
    local_spark_driver_memory: Annotated[
        str, matching(r"\d+[mg]", "a JVM memory size such as '2g' or '1536m'")
    ] = setting("2g", "heap of the local Spark driver (it also holds the cached features)")


class SparkJobError(RuntimeError):
    """spark-submit exited non-zero; the message is the job's last error line."""


def last_error_line(lines: Sequence[str]) -> str:
    """The line that best explains a failure: the job's own ``error:`` line, else the last
    Python/Java exception line, else the last line."""
    for marker in ("process_fruits_data: error:", "Error:", "Exception:", "error:"):
        for line in reversed(lines):
            if marker in line:
                return line.strip()
    return lines[-1].strip() if lines else "no output"


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
        os.killpg(pid, signal.SIGKILL)


def run_streaming(
    command: Sequence[str],
    env: dict[str, str],
    timeout_seconds: float,
    emit: Callable[[str], None],
) -> None:
    """Run ``command``, pass each output line to ``emit``; raise SparkJobError on failure."""
    tail: deque[str] = deque(maxlen=400)
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=env,
        # Own process group: a kill reaches the JVM and its Python workers too.
        start_new_session=True,
    )
    timed_out = threading.Event()

    def kill() -> None:
        if process.poll() is None:
            timed_out.set()
            _kill_group(process.pid)

    timer = threading.Timer(timeout_seconds, kill)
    timer.start()
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            emit(line)
        code = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:  # the task is being killed: do not leave Spark behind
            _kill_group(process.pid)
            process.wait()
    if timed_out.is_set():
        raise SparkJobError(f"spark-submit killed after {timeout_seconds:.0f} s")
    if code != 0:
        raise SparkJobError(f"spark-submit exited {code}: {last_error_line(list(tail))}")


def run_locally(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Stage inputs and artifacts from S3, run the job with local Spark, upload its outputs."""
    from fruits_features.config import config_from_snapshot
    from fruits_features.s3_io import download_keys, list_keys, s3_hook, upload_folder

    config = config_from_snapshot(plan["config"])
    section = plan["local"]
    hook = s3_hook(config)
    bucket, mode = plan["bucket"], plan["mode"]
    with tempfile.TemporaryDirectory(prefix=f"fruits-{plan['run_key']}-") as tmp:
        work = Path(tmp)
        # Only the classes the mode can select (Training/Apple* for mini/apples).
        keys = [
            key
            for key in list_keys(hook, bucket, listing_prefix(config, mode))
            if (label := image_class(key, config)) is not None and MODES[mode].selects(label)
        ]
        started = time.monotonic()
        input_root = config.storage.input_prefix + "/"
        staged = download_keys(hook, bucket, keys, input_root, work / "input")
        log.info("Staged %d images in %.1f s", staged, time.monotonic() - started)
        artifacts: dict[str, Path] = {}
        for name in (ENTRY_POINT_NAME, JOB_ZIP_NAME, WEIGHTS_NAME):
            artifact_bucket, key = split_s3_uri(plan["artifacts"][name])
            folder = key.rsplit("/", 1)[0] + "/"
            download_keys(hook, artifact_bucket, [key], folder, work / "artifacts")
            artifacts[name] = work / "artifacts" / name

        output = work / "output"
        planned = JobInvocation.from_dict(section["job"])
        invocation = JobInvocation(
            entry_point=str(artifacts[ENTRY_POINT_NAME]),
            job_zip=str(artifacts[JOB_ZIP_NAME]),
            request=planned.request.moved(
                input_uri=str(work / "input"),
                output_uri=str(output),
                weights_uri=str(artifacts[WEIGHTS_NAME]),
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
        uploaded = upload_folder(hook, output, bucket, plan["output_prefix"])
        log.info("Uploaded %d files to %s/", uploaded, plan["output_uri"])
    return {"staged_images": staged, "spark_seconds": round(seconds, 1), "files": uploaded}


class LocalBackend:
    name = "local"
    settings = LocalSettings

    def plan_section(self, config: PipelineConfig, run: Any) -> dict[str, Any]:
        settings: LocalSettings = config.group(LocalSettings)
        return {
            "local": {
                "job": run.invocation().to_dict(),
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

    def report_section(self, plan: Mapping[str, Any], **inputs: Any) -> None:
        return None


BACKEND = LocalBackend()
