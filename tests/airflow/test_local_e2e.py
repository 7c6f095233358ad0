"""Local compute path end to end: the real Spark job run by the DAG, S3 on SeaweedFS."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fruits_features.s3_layout import run_key
from tests.airflow.conftest import (
    AIRFLOW_ENV,
    BUCKET,
    JOB_CONF,
    QUIET_TEST_CLIENT,
    aws_connection,
    emr_clusters,
)

pytestmark = [pytest.mark.slow, QUIET_TEST_CLIENT]

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "fruits_features_dag.py"


@pytest.mark.usefixtures("airflow_db")
def test_local_run_gives_validated_outputs_on_s3_and_in_results(
    monkeypatch, pipeline_env, s3_server, capfd, tmp_path
):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FRUITS_COMPUTE", "local")
    # The worker's results as a user left them, one run kept: an older downloaded run, a
    # link to a copy kept elsewhere, a file of their own. Pruning never fails the run.
    monkeypatch.setenv("FRUITS_RESULTS_KEEP", "1")
    results = Path(pipeline_env["FRUITS_RESULTS_DIR"]) / "mini"
    older, kept = results / "older-run", tmp_path / "archive" / "kept-run"
    for copy in (older, kept):
        (copy / "summary").mkdir(parents=True)
        (copy / "_SOURCE").write_text(f"s3://{BUCKET}/elsewhere/{copy.name}\n")
    (results / "latest").symlink_to(kept, target_is_directory=True)
    (results / "notes.txt").write_text("mine")
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    dag = bag.dags["fruits_features"]
    clusters_before = len(emr_clusters())

    run = dag.test(run_conf=JOB_CONF)

    got = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", got
    assert len(emr_clusters()) == clusters_before
    log = capfd.readouterr().out
    # The job listed the Apple classes on S3 in place, and its own log reached the task log.
    assert f"selected from 338 files under s3://{BUCKET}/" in log
    # Every stage of the job, started and done, in the task log, in run order.
    done = re.findall(r"stage (\w+): done in [0-9.]+ s", log)
    assert done == [
        "list", "prepare_model", "features", "store_write", "errors_and_metadata",
        "write_features", "pca",
    ], done  # fmt: skip
    assert "stage features: started (24 images)" in log
    assert "valid: images 24, errors 0, features 24, K 5" in log

    folder = results / run_key(run.run_id)
    assert sorted(p.name for p in results.iterdir()) == sorted([folder.name, "latest", "notes.txt"])
    assert (results / "latest").is_symlink() and (kept / "_SOURCE").is_file()
    assert (results / "notes.txt").read_text() == "mine"
    info = json.loads((folder / "model_info" / "model_info.json").read_text())
    assert info["run_id"] == run.run_id
    assert info["counts"]["images_selected"] == 24
    prefix = f"{pipeline_env['FRUITS_OUTPUT_PREFIX']}/mini/{folder.name}/"
    keys = s3_server.keys(prefix)
    assert prefix + "_SUCCESS" in keys
    assert prefix + "model_info/model_info.json" in keys
    assert not [k for k in keys if k.endswith(".crc")]
    # The run report, in the results and next to the outputs on S3.
    assert (folder / "report" / "report.html").is_file()
    assert prefix + "report/report.html" in keys
    assert (folder / "_SOURCE").read_text().strip() == f"s3://{BUCKET}/{prefix.rstrip('/')}"
    # The report names the S3 locations (the job read and wrote them in place).
    header = (folder / "report" / "report.html").read_text().split("</header>")[0]
    assert f"s3://{BUCKET}/{pipeline_env['FRUITS_INPUT_PREFIX']}" in header
    assert f"s3://{BUCKET}/{prefix.rstrip('/')}" in header
    # The job's own records name S3 too.
    assert info["input"].startswith(f"s3://{BUCKET}/{pipeline_env['FRUITS_INPUT_PREFIX']}")
    assert info["output"] == f"s3://{BUCKET}/{prefix.rstrip('/')}"
    # Nothing names where the task staged the job's code.
    from fruits_features.compute.local import staging_root

    assert str(staging_root()) not in json.dumps(info) + header


@pytest.mark.long
def test_airflow_dags_test_cli_on_a_machine_without_native_lapack(tmp_path, s3_server, moto_server):
    """The real CLI in a fresh Airflow home, as an operator would smoke-test a deployment,
    on a machine without OpenBLAS: netlib on its pure-Java LAPACK, where MLlib's own PCA
    failed one time in four with fewer images than dimensions (the job's PCA is fitted ten
    times per library against numpy in tests/spark/test_pca.py). With OpenLineage's file
    transport on, as a user turns it on: the task and the Spark job linked (see
    assert_lineage_linked)."""
    home = tmp_path / "airflow-home"
    results = tmp_path / "results"
    events = tmp_path / "openlineage" / "events.jsonl"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FRUITS_", "AIRFLOW"))},
        **AIRFLOW_ENV,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(s3_server.endpoint, moto_server),
        "FRUITS_COMPUTE": "local",
        "FRUITS_BUCKET": BUCKET,
        "FRUITS_INPUT_PREFIX": "input/fruits-360",
        "FRUITS_OUTPUT_PREFIX": f"runs/{tmp_path.name}",
        # A store of its own: one another test filled would leave this run nothing to write.
        "FRUITS_FEATURE_STORE_PREFIX": f"stores/{tmp_path.name}",
        "FRUITS_RESULTS_DIR": str(results),
        # Every JVM the run starts looks for its native libraries where there are none.
        "JAVA_TOOL_OPTIONS": "-Ddev.ludovic.netlib.blas.nativeLibPath=/nonexistent/libopenblas.so.0"
        " -Ddev.ludovic.netlib.lapack.nativeLibPath=/nonexistent/libopenblas.so.0",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    conf = json.dumps({"mode": "mini", "limit": 12, "pca_components": 3})
    result = subprocess.run(
        [airflow, "dags", "test", "fruits_features", "--conf", conf],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert "state=success" in result.stdout, result.stdout[-5000:]
    (folder,) = (results / "mini").iterdir()
    info = json.loads((folder / "model_info" / "model_info.json").read_text())
    assert (info["counts"]["images_selected"], info["pca_components"]) == (12, 3)
    assert info["versions"]["netlib_lapack"] == "F2jLAPACK", info["versions"]
    assert len(info["explained_variance"]) == 3 and 0 < info["variance_kept"] <= 1
    assert_lineage_linked(events, info["input"], info["output"], info["feature_store"]["uri"])


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _uris(event: dict, side: str) -> set[str]:
    return {f"{d['namespace']}/{d['name']}" for d in event.get(side, [])}


def assert_lineage_linked(events: Path, bank: str, output: str, store: str) -> None:
    """Airflow's events (the file transport's file) and the Spark job's (beside it) are one
    run: the job's application run names the task that ran it as its parent, by the run id
    of the task's own events; the task's datasets are the bank and the outputs; the job's,
    the outputs and the feature table Spark wrote."""
    task = [e for e in _events(events) if e["job"]["name"] == "fruits_features.run_spark_locally"]
    # COMPLETE holds the task's datasets; START is the provider's to send (under
    # `airflow dags test` it may not come), so the link is checked by the task's run id.
    assert "COMPLETE" in {e["eventType"] for e in task}, task
    (task_run,) = {e["run"]["runId"] for e in task}
    (namespace,) = {e["job"]["namespace"] for e in task}
    spark = _events(events.with_name("events.spark.jsonl"))
    parents = {
        (p["job"]["namespace"], p["job"]["name"], p["run"]["runId"])
        for e in spark
        if (p := e["run"].get("facets", {}).get("parent"))
    }
    assert (namespace, "fruits_features.run_spark_locally", task_run) in parents, parents
    done = next(e for e in task if e["eventType"] == "COMPLETE")
    assert bank in _uris(done, "inputs"), done.get("inputs")
    assert {output, store, f"{output}/pca/parquet"} <= _uris(done, "outputs"), done["outputs"]
    written = set().union(*(_uris(e, "outputs") for e in spark))
    assert f"{output}/pca/csv" in written and f"{store}/features" in written, written
    assert f"{output}/listing/parquet" in written, written
