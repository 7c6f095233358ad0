"""EMR path end to end: dag.test against moto's EMR and a real S3 (SeaweedFS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.airflow.conftest import (
    BOOTSTRAP_FAILURE,
    BUCKET,
    JOB_CONF,
    QUIET_TEST_CLIENT,
    emr_clusters,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("airflow_db"), QUIET_TEST_CLIENT]

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "fruits_features_dag.py"


def load_emr_dag(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FRUITS_COMPUTE", "emr")
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags["fruits_features"]


def states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def new_clusters(before: set[str]) -> list:
    return [c for c in emr_clusters() if c.id not in before]


@pytest.mark.parametrize(
    ("deferrable", "outcome", "reason"),
    [
        # the rescheduling (non-deferrable) sensor sees a failed step
        ("false", "FAILED", "is FAILED: EMR gave no failure details."),
        # the deferred sensor (trigger run inline) sees a step cancelled by a dead cluster
        (
            "true",
            "BOOTSTRAP_FAILURE",
            f"is CANCELLED: EMR gave no failure details. Cluster "
            f"TERMINATED_WITH_ERRORS: {BOOTSTRAP_FAILURE}.",
        ),
    ],
    ids=["rescheduled-sees-failed-step", "deferred-sees-cancelled-step"],
)
def test_failed_step_terminates_cluster_and_fails_run(
    monkeypatch, pipeline_env, emr_steps, capfd, deferrable, outcome, reason
):
    monkeypatch.setenv("FRUITS_SENSOR_DEFERRABLE", deferrable)
    before = {c.id for c in emr_clusters()}
    driver = emr_steps(outcome)
    dag = load_emr_dag(monkeypatch)

    run = dag.test(run_conf=JOB_CONF)

    assert str(run.state) == "failed"
    got = states(run)
    assert got["watch_step"] == "failed"
    assert got["terminate_cluster"] == "success"
    assert got["download_outputs"] == "upstream_failed"
    (cluster,) = new_clusters(before)
    assert cluster.state in ("TERMINATED", "TERMINATED_WITH_ERRORS")
    (step_id,) = driver.handled
    location = f"s3://{BUCKET}/fruits-features/emr-logs/{cluster.id}/steps/{step_id}/"
    # dag.test runs tasks in this process: their log lines are written to its stdout
    log = capfd.readouterr().out
    assert f"step {step_id} (fruits-features mini " in log
    assert reason in log
    assert f"Step logs (controller, stderr, stdout): {location}" in log
    waited = "running trigger in line" if deferrable == "true" else "Rescheduling task"
    assert waited in log


def test_successful_step_gives_validated_outputs_and_an_asset_event(
    monkeypatch, pipeline_env, emr_steps, s3_server, job_outputs, db_variables, capfd
):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    # Run-time settings: a database Variable beats its environment twin.
    monkeypatch.setenv("FRUITS_EMR_SERVICE_ROLE", "FromEnvironment")
    db_variables("fruits_emr_service_role", "FromVariable")
    before = {c.id for c in emr_clusters()}
    driver = emr_steps("COMPLETED", job_outputs)
    dag = load_emr_dag(monkeypatch)

    run = dag.test(run_conf=JOB_CONF)

    assert str(run.state) == "success", states(run)
    assert set(states(run).values()) == {"success"}
    (cluster,) = new_clusters(before)
    assert cluster.state == "TERMINATED"
    # What EMR was asked to do: the plan's cluster and exactly one spark-submit step.
    assert cluster.release_label == "emr-7.11.0"
    assert cluster.service_role == "FromVariable"
    (step,) = cluster.steps
    assert step.args[:4] == ["spark-submit", "--deploy-mode", "cluster", "--py-files"]
    args = driver.handled[step.id]
    assert (args["--mode"], args["--pca-components"], args["--limit"]) == ("mini", "5", "24")
    assert args["--run-id"] == run.run_id

    # Artifacts and outputs on S3 under the run's own prefixes.
    key = args["--output"].rsplit("/", 1)[-1]
    artifacts = s3_server.keys(f"fruits-features/artifacts/{key}/")
    assert {k.rsplit("/", 1)[-1] for k in artifacts} == {
        "process_fruits_data.py",
        "fruits_job.zip",
        "install_dependencies.sh",
        "requirements-emr.txt",
        "mobilenet_v2_1.0_224_no_top.weights.h5",
    }
    results = Path(pipeline_env["FRUITS_RESULTS_DIR"]) / "mini" / key
    assert (results / "_SUCCESS").is_file()
    assert (results / "pca" / "parquet").is_dir()
    # The report knows the cluster: id, wall time from creation to termination, cost.
    html = (results / "report" / "report.html").read_text()
    assert cluster.id in html
    assert "m5.2xlarge" in html

    log = capfd.readouterr().out
    assert "valid: images 24, errors 0, features 24, K 5" in log

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.source_run_id == run.run_id)
        ).all()
    assert len(events) == 1
    assert events[0].extra["uri"] == f"{args['--output']}/pca/parquet/"
    assert events[0].extra["images"] == 24


def test_bad_params_or_config_never_create_a_cluster(
    monkeypatch, pipeline_env, db_variables, capfd
):
    from airflow.sdk.definitions.param import ParamValidationError

    before = {c.id for c in emr_clusters()}
    dag = load_emr_dag(monkeypatch)
    # Refused by the params schema before a run exists...
    with pytest.raises(ParamValidationError):
        dag.test(run_conf={"mode": "pears"})
    # ...or by check_inputs: K above the 24 images this run would process.
    run = dag.test(run_conf={**JOB_CONF, "pca_components": 50})
    assert str(run.state) == "failed"
    got = states(run)
    assert got["check_inputs"] == "failed"
    assert got["create_cluster"] == "upstream_failed"
    assert got["terminate_cluster"] in ("upstream_failed", "skipped")
    assert new_clusters(before) == []
    assert "pca_components 50 > the 24 images this run would process" in capfd.readouterr().out
    # ...or a bad Variable, read at run time by check_inputs.
    db_variables("fruits_core_instance_count", "zero")
    run = dag.test(run_conf=JOB_CONF)
    assert states(run)["check_inputs"] == "failed"
    assert new_clusters(before) == []
    assert (
        "bad FRUITS_CORE_INSTANCE_COUNT (from Variable fruits_core_instance_count): 'zero'"
        in capfd.readouterr().out
    )


def test_an_earlier_run_is_never_overwritten(monkeypatch, pipeline_env, s3_server, capfd):
    from fruits_features.s3_layout import run_key

    before = {c.id for c in emr_clusters()}
    dag = load_emr_dag(monkeypatch)
    run_id = "manual__2026-01-01T00:00:00+00:00"
    prefix = f"{pipeline_env['FRUITS_OUTPUT_PREFIX']}/mini/{run_key(run_id)}/"
    s3_server.client().put_object(Bucket=BUCKET, Key=prefix + "_SUCCESS", Body=b"")
    monkeypatch.setattr(
        "airflow.models.dagrun.DagRun.generate_run_id", staticmethod(lambda **_: run_id)
    )

    run = dag.test(run_conf=JOB_CONF)

    assert states(run)["check_inputs"] == "failed"
    assert new_clusters(before) == []
    assert "refusing to overwrite an earlier run" in capfd.readouterr().out
