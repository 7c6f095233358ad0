"""Bad arguments and inputs fail fast, with one clear line, before any model is built."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ENTRY_POINT, WEIGHTS, spark_submit_job
from tests.spark.conftest import job_args

ENTRY = str(ENTRY_POINT)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mode", "pears"], "argument --mode: invalid choice: 'pears'"),
        (["--mode", "mini", "--pca-components", "0"], "must be between 1 and 1280, got 0"),
        (["--mode", "mini", "--pca-components", "1281"], "must be between 1 and 1280, got 1281"),
        (["--mode", "mini", "--limit", "-3"], "must be >= 1, got -3"),
        (["--mode", "mini", "--engine", "torch"], "invalid choice: 'torch'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, extra, message):
    done = subprocess.run(
        [sys.executable, ENTRY, *job_args(tmp_path, tmp_path / "out", *extra)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("process_fruits_data: error: ")
    assert message in lines[0]


@pytest.fixture()
def run_job(spark):
    from fruits_job.bank import JobInputError
    from fruits_job.job import parse as parse_args
    from fruits_job.job import run

    def _run(argv: list[str]) -> str:
        with pytest.raises(JobInputError) as failure:
            run(spark, parse_args(argv))
        return str(failure.value)

    return _run


def test_missing_weights(run_job, job_input, tmp_path):
    argv = job_args(job_input, tmp_path / "o", "--mode", "mini")
    argv[argv.index(str(WEIGHTS))] = str(tmp_path / "nope.weights.h5")
    assert "weights file not found" in run_job(argv)


def test_input_without_training_folder(run_job, tmp_path):
    (tmp_path / "empty").mkdir()
    message = run_job(job_args(tmp_path / "empty", tmp_path / "o", "--mode", "full"))
    assert "no Training/ folder under" in message


def test_mode_with_no_images(run_job, tmp_path):
    (tmp_path / "in" / "Training" / "Kiwi").mkdir(parents=True)
    (tmp_path / "in" / "Training" / "Kiwi" / "notes.txt").write_text("x")
    message = run_job(job_args(tmp_path / "in", tmp_path / "o", "--mode", "apples"))
    assert "no images for mode 'apples'" in message


def test_more_components_than_images(run_job, job_input, tmp_path):
    argv = job_args(
        job_input, tmp_path / "o", "--mode", "apples", "--limit", "5", "--pca-components", "6"
    )
    assert "--pca-components 6 is more than the 5 images this run would process" in run_job(argv)


def test_one_image_is_too_few_for_a_pca(run_job, job_input, tmp_path):
    argv = job_args(
        job_input, tmp_path / "o", "--mode", "apples", "--limit", "1", "--pca-components", "1"
    )
    assert run_job(argv) == "a PCA needs at least 2 images; this run would process 1"


def test_an_existing_run_is_never_overwritten(run_job, job_input, tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "_SUCCESS").write_text("")
    message = run_job(job_args(job_input, tmp_path / "o", "--mode", "mini"))
    assert "already holds files" in message
    assert (tmp_path / "o" / "_SUCCESS").exists()


@pytest.mark.long
@pytest.mark.slow
def test_spark_submit_as_the_dag_runs_it(job_input, tmp_path):
    """The job's command line, as the local backend (and EMR) submits it."""
    from fruits_contract.job_request import JobRequest

    request = JobRequest(
        input_uri=str(job_input),
        output_uri=str(tmp_path / "run"),
        weights_uri=str(WEIGHTS),
        mode="mini",
        pca_components=3,
        run_id="cli",
        limit=6,
    )
    ok = spark_submit_job(request, tmp_path / "zip", timeout=600)
    assert ok.returncode == 0, ok.stdout[-3000:]
    assert (tmp_path / "run" / "_SUCCESS").exists()
    # spark-submit's PythonRunner merges the driver's stderr into its stdout.
    assert "run cli done: 6 images, 0 errors" in ok.stdout
    again = spark_submit_job(request, tmp_path / "zip", timeout=600)
    assert again.returncode == 2
    assert (
        again.stdout.strip().splitlines()[-1].startswith("process_fruits_data: error: output file:")
    )
