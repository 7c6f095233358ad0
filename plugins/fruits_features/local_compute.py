"""Local compute path: the same Spark job, run by spark-submit next to Airflow instead of EMR."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import task

from fruits_features import native_blas
from fruits_features.config import config_from_snapshot
from fruits_features.emr_spec import job_arguments
from fruits_features.params import RunParams
from fruits_features.s3_io import download_keys, list_keys, s3_hook, upload_folder
from fruits_features.s3_layout import (
    ENTRY_POINT_NAME,
    JOB_ZIP_NAME,
    WEIGHTS_NAME,
    image_class,
    listing_prefix,
    mode_selects_class,
    split_s3_uri,
)

log = logging.getLogger(__name__)


class SparkJobError(RuntimeError):
    """spark-submit exited non-zero; the message is the job's last error line."""


def find_spark_submit() -> Path:
    """``spark-submit`` of this interpreter's environment (venv ``bin/``, else pyspark's own)."""
    beside = Path(sys.executable).parent / "spark-submit"
    if beside.is_file():
        return beside
    spec = importlib.util.find_spec("pyspark")
    if spec and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "spark-submit"
        if bundled.is_file():
            return bundled
    raise FileNotFoundError(f"spark-submit not found next to {sys.executable} nor in pyspark")


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


@task
def run_spark_locally(plan: dict[str, Any]) -> dict[str, Any]:
    """Stage inputs and artifacts from S3, run the job with local Spark, upload its outputs."""
    config = config_from_snapshot(plan["config"])
    hook = s3_hook(config)
    mode = plan["mode"]
    run_params = RunParams(mode, plan["pca_components"], plan["limit"], plan["engine"])
    with tempfile.TemporaryDirectory(prefix=f"fruits-{plan['run_key']}-") as tmp:
        work = Path(tmp)
        # Only the classes the mode can select (Training/Apple* for mini/apples).
        prefix = listing_prefix(config, mode)
        keys = [
            k
            for k in list_keys(hook, config.bucket, prefix)
            if (cls := image_class(k, config)) is not None and mode_selects_class(mode, cls)
        ]
        started = time.monotonic()
        staged = download_keys(hook, config.bucket, keys, config.input_prefix + "/", work / "input")
        log.info("Staged %d images in %.1f s", staged, time.monotonic() - started)
        artifacts: dict[str, Path] = {}
        for name in (ENTRY_POINT_NAME, JOB_ZIP_NAME, WEIGHTS_NAME):
            bucket, key = split_s3_uri(plan["artifacts"][name])
            download_keys(hook, bucket, [key], key.rsplit("/", 1)[0] + "/", work / "artifacts")
            artifacts[name] = work / "artifacts" / name

        output = work / "output"
        command = [
            str(find_spark_submit()),
            "--master",
            config.local_spark_master,
            "--driver-memory",
            config.local_spark_driver_memory,
            "--conf",
            "spark.ui.enabled=false",
            *native_blas.spark_submit_args(),
            "--py-files",
            str(artifacts[JOB_ZIP_NAME]),
            str(artifacts[ENTRY_POINT_NAME]),
            *job_arguments(
                input_uri=str(work / "input"),
                output_uri=str(output),
                weights_uri=str(artifacts[WEIGHTS_NAME]),
                run_params=run_params,
                run_id=plan["run_id"],
            ),
        ]
        env = {
            **os.environ,
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        }
        if not native_blas.find_openblas():
            log.warning(
                "No OpenBLAS found: MLlib's PCA may fail its check (README, Troubleshooting)"
            )
        log.info("Running: %s", " ".join(command))
        started = time.monotonic()
        run_streaming(command, env, config.step_timeout_seconds, lambda line: log.info("%s", line))
        seconds = time.monotonic() - started
        log.info("Spark job finished in %.1f s", seconds)
        uploaded = upload_folder(hook, output, config.bucket, plan["output_prefix"])
        log.info("Uploaded %d files to %s/", uploaded, plan["output_uri"])
    return {"staged_images": staged, "spark_seconds": round(seconds, 1), "files": uploaded}
