"""Local compute backend: the same Spark job, run by spark-submit next to Airflow instead of EMR.

For development, demos and tests: no AWS account needed when S3 is a local server.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar

from fruits_features.compute.base import Segment
from fruits_features.config import NonEmpty, PipelineConfig, SettingsGroup, matching, setting
from fruits_features.job_invocation import JobInvocation, local_spark_submit
from fruits_features.modes import MODES
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


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it when the task process dies, even by
    SIGKILL (the OOM killer, a worker restart), so Spark never outlives its task."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl(
        PR_SET_PDEATHSIG, signal.SIGKILL
    )


@contextlib.contextmanager
def _stopped_by_sigterm(on_stop: Callable[[], None]) -> Iterator[None]:
    """While inside: SIGTERM (how Airflow stops a task) stops the job, then fails the task."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers live in the main thread only
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        on_stop()
        if callable(previous):
            previous(signum, frame)
        raise SparkJobError("stopped by SIGTERM: the Spark job was killed")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_streaming(
    command: Sequence[str],
    env: dict[str, str],
    timeout_seconds: float,
    emit: Callable[[str], None],
) -> None:
    """Run ``command``, pass each output line to ``emit`` as it comes; raise SparkJobError on
    failure. The command's process group is killed when the timeout passes, when the task
    is stopped (SIGTERM), and by the kernel when the task process dies."""
    tail: deque[str] = deque(maxlen=400)
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        # A Python child writing to a pipe buffers its output by blocks: lines would come
        # late and out of order with its stderr.
        env={**env, "PYTHONUNBUFFERED": "1"},
        # Own process group: a kill reaches the JVM and its Python workers too.
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    timed_out = threading.Event()

    def kill() -> None:
        if process.poll() is None:
            timed_out.set()
            _kill_group(process.pid)

    timer = threading.Timer(timeout_seconds, kill)
    timer.start()
    try:
        with _stopped_by_sigterm(lambda: _kill_group(process.pid)):
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


def stage_inputs(client: Any, bucket: str, input_prefix: str, mode: str, target: Path) -> int:
    """Copy what the job lists on S3 for a mode to ``<target>/Training/``, each file with its
    S3 modification time: the images, and the files the job reports as skipped (not images,
    hidden-looking names, names with ':'), so it sees on disk what it would see on S3."""
    from fruits_features.s3_io import download_objects, list_objects

    root = input_prefix.strip("/") + "/"
    objects = list_objects(client, bucket, f"{root}Training/{MODES[mode].class_prefix}")
    return download_objects(client, bucket, objects, root, target)


def run_locally(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Stage inputs and artifacts from S3, run the job with local Spark, upload its outputs."""
    from fruits_features.config import config_from_snapshot
    from fruits_features.s3_io import download_keys, s3_client, upload_folder

    config = config_from_snapshot(plan["config"])
    section = plan["local"]
    client = s3_client(config)
    bucket = plan["bucket"]
    with staging_folder(plan["run_key"]) as work:
        started = time.monotonic()
        staged = stage_inputs(
            client, bucket, config.storage.input_prefix, plan["mode"], work / "input"
        )
        log.info("Staged %d files in %.1f s", staged, time.monotonic() - started)
        planned = JobInvocation.from_dict(section["job"])
        request = planned.request
        artifacts: dict[str, Path] = {}
        for uri in (
            planned.entry_point,
            planned.job_zip,
            request.weights_uri,
            request.also_skipped,
        ):
            artifact_bucket, key = split_s3_uri(uri)
            folder = key.rsplit("/", 1)[0] + "/"
            download_keys(client, artifact_bucket, [key], folder, work / "artifacts")
            artifacts[uri] = work / "artifacts" / key.rsplit("/", 1)[-1]

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
        uploaded = upload_folder(client, output, bucket, plan["output_prefix"])
        log.info("Uploaded %d files to %s/", uploaded, plan["output_uri"])
    return {"staged_files": staged, "spark_seconds": round(seconds, 1), "files": uploaded}


class LocalBackend:
    name = "local"
    settings = LocalSettings

    def plan_section(self, config: PipelineConfig, run: Any) -> dict[str, Any]:
        settings: LocalSettings = config.group(LocalSettings)
        return {
            "local": {
                # The job keeps its features next to Airflow, where it runs (EMR's are on S3).
                "job": run.invocation(
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

    def report_section(self, plan: Mapping[str, Any], **inputs: Any) -> None:
        return None


BACKEND = LocalBackend()
