"""EMR's part in the EMR tests: a step runs its own spark-submit command, on local Spark.

moto accepts a step and leaves it RUNNING forever. Here a step's arguments (the command
EMR's command-runner.jar would run on the master) are executed for real, on the test's S3
in place: ``s3://`` goes through S3A as it goes through EMRFS on a cluster (the bank is read,
the outputs and the feature store written where they are), the master becomes
``local[2]``, and the job's code is fetched as spark-submit fetches it there. The step ends
COMPLETED or FAILED by the job's exit code, and its stderr goes where EMR keeps step logs. A
broken entry point, zip, conf or argument fails the step as it would on a cluster.
"""

from __future__ import annotations

import gzip
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fruits_features.job_invocation import REQUESTS
from fruits_features.s3 import RunS3Hook, S3Access
from fruits_features.s3_layout import split_s3_uri


def split_step(args: list[str]) -> tuple[list[str], list[str], str, list[str]]:
    """``[wrapper] spark-submit [options] entry [job args]`` → (wrapper, options, entry,
    job args): the wrapper (``timeout ...``) is what runs spark-submit on the master."""
    start = args.index("spark-submit")
    wrapper, args = args[:start], args[start:]
    index, options = 1, []
    while args[index].startswith("--"):
        options += args[index : index + 2]
        index += 2
    return wrapper, options, args[index], args[index + 1 :]


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def _pop_conf(args: list[str], key: str) -> tuple[list[str], str | None]:
    """``args`` without its ``--conf key=value``, and that value."""
    for index in range(len(args) - 1):
        if args[index] == "--conf" and args[index + 1].startswith(f"{key}="):
            return args[:index] + args[index + 2 :], args[index + 1].split("=", 1)[1]
    return list(args), None


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

    def __init__(self, s3: RunS3Hook, access: S3Access, timeout: float = 900) -> None:
        self.s3 = s3.conn
        self.access = access
        self.timeout = timeout

    def _mirror(self, uri: str, folder: Path) -> Path:
        """An s3:// object as a local file (a missing one stays missing)."""
        bucket, key = split_s3_uri(uri)
        path = folder / key.rsplit("/", 1)[-1]
        try:
            self.s3.download_file(bucket, key, str(path))
        except Exception:  # spark-submit then reports the file missing, as on EMR
            path = folder / f"missing-{path.name}"
        return path

    def run(self, args: list[str], log_uri: str) -> StepRun:
        from fruits_features.job_invocation import (
            find_spark_submit,
            local_jars,
            local_spark_env,
            shipped_jars,
        )

        wrapper, options, entry, job_args = split_step(args)
        # The program's own parser: a step it cannot parse fails here as it would on EMR.
        program = Path(entry).stem
        REQUESTS[program].from_argv(job_args)
        with tempfile.TemporaryDirectory(prefix="emr-step-") as tmp:
            work = Path(tmp)
            local_entry = self._mirror(entry, work)
            local_options = _replace(
                options, "--py-files", str(self._mirror(_option(options, "--py-files"), work))
            )
            # The jars the step ships (spark.jars), fetched from S3 as spark-submit fetches
            # them on the master; beside them, stand-ins for only what EMR itself has: its
            # Delta Lake (delta-defaults) and EMRFS. One list: spark-submit keeps one.
            local_options, shipped = _pop_conf(local_options, "spark.jars")
            fetched = [str(self._mirror(uri, work)) for uri in (shipped or "").split(",") if uri]
            stand_ins = [str(jar) for jar in local_jars() if jar not in shipped_jars()]
            confs = [a for k, v in self.access.spark_conf().items() for a in ("--conf", f"{k}={v}")]
            command = [
                *wrapper,  # as command-runner.jar runs it: the step's maximum run time
                str(find_spark_submit()),
                *("--master", "local[2]", "--conf", "spark.ui.enabled=false"),
                *("--jars", ",".join([*stand_ins, *fetched])),
                *confs,
                *local_options,
                str(local_entry),
                *job_args,
            ]
            done = subprocess.run(
                command,
                env={**local_spark_env(), **self.access.environment()},
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
        return StepRun(done.returncode, done.stdout)
