"""EMR's part in the EMR tests: a step runs its own spark-submit command, on local Spark.

moto accepts a step and leaves it RUNNING forever. Here a step's arguments (the command
EMR's command-runner.jar would run on the master) are executed for real: its ``s3://``
files are mirrored to local ones the way EMRFS would read them (the job's input staged as
the local backend stages it), the master becomes ``local[2]``, and what the job writes is
put back under its ``--output``. The step ends COMPLETED or FAILED by the job's exit code,
and its stderr goes where EMR keeps step logs. A broken entry point, zip, conf or argument
fails the step as it would on a cluster.
"""

from __future__ import annotations

import gzip
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fruits_contract.job_request import JobRequest
from fruits_features.compute.local import stage_inputs
from fruits_features.s3 import RunS3Hook
from fruits_features.s3_layout import split_s3_uri


def split_step(args: list[str]) -> tuple[list[str], str, list[str]]:
    """``spark-submit [options] entry [job args]`` → (options, entry, job args)."""
    assert args[0] == "spark-submit", args
    index, options = 1, []
    while args[index].startswith("--"):
        options += args[index : index + 2]
        index += 2
    return options, args[index], args[index + 1 :]


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def _replace(args: list[str], name: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(name) + 1] = value
    return out


@dataclass
class StepRun:
    code: int
    output: str


class StepExecutor:
    """Runs an EMR step's command locally against the test's S3 (SeaweedFS)."""

    def __init__(self, s3: RunS3Hook, timeout: float = 900) -> None:
        self.hook = s3
        self.s3 = s3.conn
        self.timeout = timeout

    def _mirror(self, uri: str, folder: Path) -> Path:
        """An s3:// object as a local file, as EMRFS reads it (a missing one stays missing)."""
        bucket, key = split_s3_uri(uri)
        path = folder / key.rsplit("/", 1)[-1]
        try:
            self.s3.download_file(bucket, key, str(path))
        except Exception:  # the job then reports the file missing, as on EMR
            path = folder / f"missing-{path.name}"
        return path

    def run(self, args: list[str], log_uri: str) -> StepRun:
        from fruits_features.job_invocation import find_spark_submit, local_spark_env

        options, entry, job_args = split_step(args)
        # The job's own parser: a step the job cannot parse fails here as it would on EMR.
        parsed = JobRequest.from_argv(job_args)
        with tempfile.TemporaryDirectory(prefix="emr-step-") as tmp:
            work = Path(tmp)
            (work / "artifacts").mkdir()
            local_entry = self._mirror(entry, work / "artifacts")
            local_options = _replace(
                options,
                "--py-files",
                str(self._mirror(_option(options, "--py-files"), work / "artifacts")),
            )
            bucket, prefix = split_s3_uri(parsed.input_uri)
            stage_inputs(self.hook, bucket, prefix, parsed.mode, work / "input")
            local_job_args = _replace(job_args, "--input", str(work / "input"))
            local_job_args = _replace(local_job_args, "--output", str(work / "output"))
            for flag in ("--weights", "--also-skipped"):
                if flag in job_args:
                    local = self._mirror(_option(job_args, flag), work / "artifacts")
                    local_job_args = _replace(local_job_args, flag, str(local))
            store = _option(job_args, "--feature-store")
            if store is not None:  # the store on S3, as the job reads and writes it there
                store_bucket, store_prefix = split_s3_uri(store)
                store_prefix = store_prefix.rstrip("/") + "/"
                objects = self.hook.list_objects(store_bucket, store_prefix)
                self.hook.download_objects(store_bucket, objects, store_prefix, work / "store")
                (work / "store").mkdir(exist_ok=True)
                local_job_args = _replace(local_job_args, "--feature-store", str(work / "store"))
            # On EMR the job reads and writes S3 in place: its outputs name those URIs.
            local_job_args += ["--input-as", parsed.input_uri, "--output-as", parsed.output_uri]
            local_job_args += ["--weights-as", parsed.weights_uri]
            command = [
                str(find_spark_submit()),
                *("--master", "local[2]", "--conf", "spark.ui.enabled=false"),
                *local_options,
                str(local_entry),
                *local_job_args,
            ]
            done = subprocess.run(
                command,
                env=local_spark_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=self.timeout,
            )
            log_bucket, log_key = split_s3_uri(log_uri)
            self.s3.put_object(
                Bucket=log_bucket,
                Key=f"{log_key.rstrip('/')}/stderr.gz",
                Body=gzip.compress(done.stdout.encode()),
            )
            if done.returncode == 0:
                out_bucket, out_prefix = split_s3_uri(parsed.output_uri)
                self._upload(work / "output", out_bucket, out_prefix.rstrip("/") + "/")
            if store is not None:  # what the job added, failed or not (EMRFS writes through)
                known = {o["Key"] for o in objects}
                # Commits last, as the job writes them after its segment.
                paths = sorted((work / "store").rglob("*"), key=lambda p: ("commits" in p.parts, p))
                for path in paths:
                    key = store_prefix + path.relative_to(work / "store").as_posix()
                    if path.is_file() and path.suffix != ".crc" and key not in known:
                        self.s3.upload_file(str(path), store_bucket, key)
        return StepRun(done.returncode, done.stdout)

    def _upload(self, folder: Path, bucket: str, prefix: str) -> None:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".crc")
        # The job's _SUCCESS last, as EMRFS sees the job write it last.
        for path in sorted(files, key=lambda p: p == folder / "_SUCCESS"):
            self.s3.upload_file(str(path), bucket, prefix + path.relative_to(folder).as_posix())
