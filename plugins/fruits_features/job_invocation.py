"""How the Spark job is invoked: its arguments and spark-submit command, built in one place.

Both compute backends use it (EMR wraps the command in ``command-runner.jar``), and so do the
benchmark and the tests, so a run, a measurement and a test start the job the same way.
The arguments are the job's command line, as ``fruits_contract.job_request`` defines it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fruits_contract.job_request import CommandLine, JobRequest, MaintenanceRequest

# The programs a run submits, by name: the job and the feature store's maintenance.
REQUESTS: dict[str, type[CommandLine]] = {r.PROG: r for r in (JobRequest, MaintenanceRequest)}


@dataclass(frozen=True)
class JobInvocation:
    """spark-submit of a program of the job's package: its entry point, the package, Spark
    settings, the request (its arguments)."""

    entry_point: str
    job_zip: str
    request: CommandLine
    spark_conf: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, for the run plan."""
        return asdict(self) | {"spark_conf": dict(self.spark_conf), "program": self.request.PROG}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobInvocation:
        request = REQUESTS[data.get("program", JobRequest.PROG)]
        return cls(
            entry_point=data["entry_point"],
            job_zip=data["job_zip"],
            request=request(**data["request"]),
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
            *self.request.to_argv(),
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


class MissingJarsError(FileNotFoundError):
    """The JVM packages of requirements-jvm.txt are not where `make setup` puts them."""


def local_jars() -> list[Path]:
    """The JVM packages of a local run (Delta Lake, s3a): ``<venv>/jars``, made by
    ``make setup`` (scripts/fetch_jars.py) from requirements-jvm.txt."""
    folder = Path(sys.prefix) / "jars"
    jars = sorted(folder.glob("*.jar"))
    if not any(jar.name.startswith("delta-spark") for jar in jars):
        raise MissingJarsError(
            f"no Delta Lake jar in {folder}: run `make setup` (it fetches requirements-jvm.txt)"
        )
    return jars


def shipped_jars() -> list[Path]:
    """The JVM packages a cluster's driver needs beyond the cluster's own, uploaded with the
    run's artifacts: Delta Kernel (EMR ships Delta's Spark connector, not its Kernel)."""
    return [jar for jar in local_jars() if jar.name.startswith("delta-kernel-")]


def local_submit_options(
    master: str = "local[2]", driver_memory: str = "2g", extra_jars: Sequence[Path] = ()
) -> list[str]:
    """spark-submit options of a local-mode run; ``extra_jars`` beside the usual ones."""
    return [
        *("--master", master, "--driver-memory", driver_memory),
        *("--conf", "spark.ui.enabled=false"),
        *("--jars", ",".join(str(jar) for jar in [*local_jars(), *extra_jars])),
    ]


def local_spark_env() -> dict[str, str]:
    """Environment of a local-mode run: the Python workers on this interpreter."""
    # Spark's Python workers would otherwise run `python3` from PATH, without this
    # environment's packages.
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}


def local_spark_submit(
    invocation: JobInvocation,
    *,
    master: str = "local[2]",
    driver_memory: str = "2g",
    extra_jars: Sequence[Path] = (),
) -> tuple[list[str], dict[str, str]]:
    """Command and environment of a local-mode run of the job."""
    options = local_submit_options(master, driver_memory, extra_jars)
    command = invocation.spark_submit(executable=str(find_spark_submit()), options=options)
    return command, local_spark_env()
