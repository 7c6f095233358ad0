"""A local Spark session and job runs shared by the Spark job's tests."""

from __future__ import annotations

import os

import pytest

from tests.conftest import REPO, WEIGHTS
from tests.spark.images import build_input

# Small but real: every class has real Fruits-360 JPEGs; Lemon also holds the
# broken and odd files of tests/spark/images.py.
PER_CLASS = {
    "Banana": 6,
    "Banana Red": 4,
    "Apple Braeburn": 5,
    "Apple Red 1": 5,
    "Kiwi": 4,
    "Strawberry": 4,
    "Lemon": 3,
}
PCA_K = 8


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A local session in this process; its Python workers import the job from the zip the
    DAG ships (``--py-files``), as on a cluster."""
    from fruits_features.job_invocation import local_jars
    from fruits_features.job_package import build_job_zip
    from fruits_job.engines import EXPORT_CACHE_ENV

    job_zip = build_job_zip(REPO, tmp_path_factory.mktemp("job_zip"))
    # The models these runs use are exported by the code under test, not taken from an
    # earlier session's cache.
    os.environ[EXPORT_CACHE_ENV] = str(tmp_path_factory.mktemp("export_cache"))
    jars = ",".join(str(jar) for jar in local_jars())
    os.environ["PYSPARK_SUBMIT_ARGS"] = (
        "--master local[2] --conf spark.ui.enabled=false --driver-memory 2g "
        f"--jars {jars} --py-files {job_zip} pyspark-shell"
    )
    from fruits_job.session import build_session

    session = build_session()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def job_input(tmp_path_factory):
    return build_input(tmp_path_factory.mktemp("input"), PER_CLASS, broken_class="Lemon")


def job_args(input_dir, output_dir, *extra: str) -> list[str]:
    return [
        "--input",
        str(input_dir),
        "--output",
        str(output_dir),
        "--weights",
        str(WEIGHTS),
        *extra,
    ]


@pytest.fixture(scope="session")
def full_run(spark, job_input, tmp_path_factory):
    from fruits_job.job import parse as parse_args
    from fruits_job.job import run

    output = tmp_path_factory.mktemp("runs") / "full"
    args = parse_args(
        job_args(
            job_input,
            output,
            "--mode",
            "full",
            "--pca-components",
            str(PCA_K),
            "--partitions",
            "2",
            "--run-id",
            "test-full",
            "--export-features",
        )
    )
    return run(spark, args), output
