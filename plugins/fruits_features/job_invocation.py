"""How the Spark job is invoked: its arguments and spark-submit command, built in one place.

Both compute backends use it (EMR wraps the command in ``command-runner.jar``), and so do the
benchmark and the tests, so a run, a measurement and a test start the job the same way.
The arguments are the job's command line as docs/contract.md gives it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from fruits_features.engines import DEFAULT_ENGINE


@dataclass(frozen=True)
class JobRequest:
    """What one run of the job does: where it reads and writes, and with which parameters."""

    input_uri: str
    output_uri: str
    weights_uri: str
    mode: str
    pca_components: int
    run_id: str
    engine: str = DEFAULT_ENGINE
    limit: int | None = None
    partitions: int | None = None
    image_size: int | None = None
    batch_size: int | None = None
    # Where the job's input and output really live, when it runs on a copy: the outputs
    # name these (the local backend stages the S3 bank on disk).
    input_as: str | None = None
    output_as: str | None = None
    weights_as: str | None = None
    # Files the job's Spark listing cannot see (hidden-looking names), found by the DAG.
    also_skipped: str | None = None
    # Features of unchanged images are reused from there; recompute refreshes every one.
    feature_store: str | None = None
    recompute: bool = False

    def arguments(self) -> list[str]:
        """The job's own arguments (after the entry point)."""
        args = [
            *("--input", self.input_uri, "--output", self.output_uri, "--mode", self.mode),
            *("--pca-components", str(self.pca_components), "--weights", self.weights_uri),
            *("--run-id", self.run_id, "--engine", self.engine),
        ]
        for flag, value in (
            ("--limit", self.limit),
            ("--partitions", self.partitions),
            ("--image-size", self.image_size),
            ("--batch-size", self.batch_size),
            ("--input-as", self.input_as),
            ("--output-as", self.output_as),
            ("--weights-as", self.weights_as),
            ("--also-skipped", self.also_skipped),
            ("--feature-store", self.feature_store),
        ):
            if value is not None:
                args += [flag, str(value)]
        if self.recompute:
            args.append("--recompute")
        return args

    def moved(self, **locations: str | None) -> JobRequest:
        """The same run reading and writing elsewhere (e.g. a local staging copy)."""
        return replace(self, **locations)


@dataclass(frozen=True)
class JobInvocation:
    """spark-submit of the job: the entry point, the job package, Spark settings, the request."""

    entry_point: str
    job_zip: str
    request: JobRequest
    spark_conf: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, for the run plan."""
        return asdict(self) | {"spark_conf": dict(self.spark_conf)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobInvocation:
        return cls(
            entry_point=data["entry_point"],
            job_zip=data["job_zip"],
            request=JobRequest(**data["request"]),
            spark_conf=dict(data.get("spark_conf") or {}),
        )

    def spark_submit(
        self, *, executable: str = "spark-submit", options: Sequence[str] = ()
    ) -> list[str]:
        """The command line: ``executable``, its ``options``, the confs, then the job."""
        confs = [arg for k, v in self.spark_conf.items() for arg in ("--conf", f"{k}={v}")]
        return [
            executable,
            *options,
            *confs,
            "--py-files",
            self.job_zip,
            self.entry_point,
            *self.request.arguments(),
        ]


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


def local_submit_options(master: str = "local[2]", driver_memory: str = "2g") -> list[str]:
    """spark-submit options of a local-mode run."""
    return [
        *("--master", master, "--driver-memory", driver_memory),
        *("--conf", "spark.ui.enabled=false"),
    ]


def local_spark_env() -> dict[str, str]:
    """Environment of a local-mode run: the Python workers on this interpreter."""
    # Spark's Python workers would otherwise run `python3` from PATH, without this
    # environment's packages.
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}


def local_spark_submit(
    invocation: JobInvocation, *, master: str = "local[2]", driver_memory: str = "2g"
) -> tuple[list[str], dict[str, str]]:
    """Command and environment of a local-mode run of the job."""
    command = invocation.spark_submit(
        executable=str(find_spark_submit()), options=local_submit_options(master, driver_memory)
    )
    return command, local_spark_env()
