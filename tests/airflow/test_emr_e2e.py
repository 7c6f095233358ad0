"""EMR path end to end: dag.test against moto's EMR (behind a proxy that fails as AWS does) and
a real S3 (SeaweedFS). Steps run their own spark-submit command on local Spark; every AWS call
the DAG makes is recorded, held to botocore's service model and replayed against the IAM
policy the README gives (iam/airflow.json)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from markupsafe import escape

from fruits_features.iam import render_policy
from fruits_features.s3_layout import run_key
from fruits_features.settings import build_config
from tests.airflow.aws_calls import ACCOUNT, denied_calls, record_aws_calls
from tests.airflow.aws_model import request_problems
from tests.airflow.conftest import (
    BOOTSTRAP_FAILURE,
    BUCKET,
    JOB_CONF,
    QUIET_TEST_CLIENT,
    emr_clusters,
    sns_messages,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("airflow_db"), QUIET_TEST_CLIENT]

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "fruits_features_dag.py"


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


def assert_step_failed_and_torn_down(run) -> dict[str, str]:
    """The run failed in watch_step, and its teardown and last check still ran: its states."""
    assert str(run.state) == "failed"
    got = states(run)
    assert (got["watch_step"], got["terminate_cluster"], got["no_cluster_left"]) == (
        "failed",
        "success",
        "success",
    )
    return got


def tags_of(cluster) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in cluster.tags}


def cluster_tags(cluster_id: str) -> dict[str, str]:
    (cluster,) = [c for c in emr_clusters() if c.id == cluster_id]
    return tags_of(cluster)


def assert_aws_would_accept(calls, pipeline_env, **settings: str) -> None:
    """Each call valid for botocore's model, and allowed by the Airflow identity's policy
    rendered for the run's settings."""
    assert calls, "no AWS call recorded"
    for call in calls:
        assert request_problems(call.service, call.operation, call.params) == [], call
    config = build_config(
        {
            "bucket": BUCKET,
            "input_prefix": pipeline_env["FRUITS_INPUT_PREFIX"],
            "output_prefix": pipeline_env["FRUITS_OUTPUT_PREFIX"],
            "feature_store_prefix": pipeline_env["FRUITS_FEATURE_STORE_PREFIX"],
            **settings,
        }
    )
    policy = render_policy("airflow", config, ACCOUNT)
    denied = denied_calls(calls, policy, cluster_tags)
    assert denied == [], "\n".join(f"{c.operation}: {r}" for c, r in denied)


@pytest.mark.long
def test_successful_run_survives_throttling_and_ends_its_cluster(
    monkeypatch, pipeline_env, emr_steps, emr_faults, s3_server, db_variables, capfd, sns_topic
):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    # Alerts on, for failures only (the default): a good night tells nobody.
    monkeypatch.setenv("FRUITS_ALERT_SNS_TOPIC_ARN", sns_topic)
    # Run-time settings: a database Variable beats its environment twin.
    monkeypatch.setenv("FRUITS_EMR_SERVICE_ROLE", "FromEnvironment")
    db_variables("fruits_emr_service_role", "FromVariable")
    # AWS throttles now and then: the describe right after RunJobFlow, one poke of the step
    # and the terminate call.
    emr_faults.inject("DescribeCluster", "throttle")
    emr_faults.inject("DescribeStep", "throttle")
    emr_faults.inject("TerminateJobFlows", "throttle")
    before = {c.id for c in emr_clusters()}
    driver = emr_steps("RUN")
    dag = load_emr_dag(monkeypatch)

    with record_aws_calls() as calls:
        run = dag.test(run_conf=JOB_CONF)

    assert str(run.state) == "success", states(run)
    got = states(run)
    # A new store: its first maintenance is a week after its table's creation.
    assert got.pop("watch_maintenance") == "skipped"
    assert got.pop("report_failure") == "skipped"  # nothing failed
    assert set(got.values()) == {"success"}
    assert ("DescribeCluster", "throttle") in emr_faults.faulted
    assert ("DescribeStep", "throttle") in emr_faults.faulted
    assert ("TerminateJobFlows", "throttle") in emr_faults.faulted
    assert emr_faults.calls["RunJobFlow"] == 1
    (cluster,) = new_clusters(before)
    assert cluster.state == "TERMINATED"
    # What EMR was asked to do: the plan's cluster and exactly one spark-submit step, which
    # ran the real job from the uploaded artifacts.
    assert cluster.release_label == "emr-7.11.0"
    assert cluster.service_role == "FromVariable"
    (step,) = cluster.steps
    # At most the sensor's wait (FRUITS_STEP_TIMEOUT_SECONDS=180 here) and 5 minutes.
    assert step.args[:4] == ["timeout", "--kill-after=60", "480", "spark-submit"]
    assert step.args[4:8] == ["--deploy-mode", "client", "--driver-memory", "8192m"]
    assert driver.runs[step.id].code == 0, driver.runs[step.id].output[-3000:]
    args = driver.handled[step.id]
    assert (args["--mode"], args["--pca-components"], args["--limit"]) == ("mini", "5", "24")
    assert args["--run-id"] == run.run_id

    key = args["--output"].rsplit("/", 1)[-1]
    artifacts = s3_server.keys(f"fruits-features/artifacts/{key}/")
    assert {k.rsplit("/", 1)[-1] for k in artifacts} == {
        "process_fruits_data.py",
        "maintain_feature_store.py",
        "fruits_job.zip",
        "install_dependencies.sh",
        "requirements-emr-driver.txt",
        "requirements-emr-worker-onnxruntime.txt",
        "requirements-emr-worker-tensorflow.txt",
        "requirements-emr-worker-openvino.txt",
        "mobilenet_v2_1.0_224_no_top.weights.h5",
        "delta-kernel-api-3.3.2.jar",  # the store's file listing: EMR ships no Delta Kernel
        "delta-kernel-defaults-3.3.2.jar",
    }
    shipped = next(a for a in step.args if a.startswith("spark.jars=")).split("=", 1)[1]
    assert sorted(uri.rsplit("/", 1)[-1] for uri in shipped.split(",")) == [
        "delta-kernel-api-3.3.2.jar",
        "delta-kernel-defaults-3.3.2.jar",
    ]
    results = Path(pipeline_env["FRUITS_RESULTS_DIR"]) / "mini" / key
    info = json.loads((results / "model_info" / "model_info.json").read_text())
    assert (info["run_id"], info["counts"]["features"]) == (run.run_id, 24)
    assert (info["input"], info["output"]) == (args["--input"], args["--output"])
    assert info["weights"]["uri"] == args["--weights"]
    features = pq.read_table(results / "features" / "parquet").to_pandas()
    assert all(p.startswith(args["--input"] + "/Training/") for p in features["path"])
    # The report knows the cluster: its id, a real end (the teardown waited), the cost.
    report = json.loads((results / "report" / "report.json").read_text())
    assert report["emr"]["cluster_id"] == cluster.id
    assert report["emr"]["still_running"] is False
    assert report["emr"]["total_usd"] > 0
    html = (results / "report" / "report.html").read_text()
    assert cluster.id in html and "still running" not in html

    log = capfd.readouterr().out
    assert "valid: images 24, errors 0, features 24, K 5" in log
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.source_run_id == run.run_id)
        ).all()
    assert len(events) == 1
    assert events[0].extra["uri"] == f"{args['--output']}/pca/parquet/"
    assert events[0].extra["images"] == 24
    assert sns_messages(sns_topic) == []
    assert_aws_would_accept(calls.calls, pipeline_env, emr_service_role="FromVariable")


@pytest.mark.long
def test_a_step_that_fails_for_real_fails_the_run_and_ends_the_cluster(
    monkeypatch, pipeline_env, emr_steps, s3_server, tmp_path, capfd, sns_topic
):
    # A deployment whose weights file is broken: the job fails on the cluster, not before.
    project = tmp_path / "project"
    for folder in ("spark", "plugins/fruits_contract", "bootstrap", "models"):
        shutil.copytree(
            REPO / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    (project / "models" / "mobilenet_v2_1.0_224_no_top.weights.h5").write_bytes(b"not hdf5")
    monkeypatch.setenv("FRUITS_PROJECT_DIR", str(project))
    monkeypatch.setenv("FRUITS_SENSOR_DEFERRABLE", "false")
    monkeypatch.setenv("FRUITS_ALERT_SNS_TOPIC_ARN", sns_topic)
    before = {c.id for c in emr_clusters()}
    driver = emr_steps("RUN")
    dag = load_emr_dag(monkeypatch)

    with record_aws_calls() as calls:
        run = dag.test(run_conf=JOB_CONF)

    got = assert_step_failed_and_torn_down(run)
    assert got["download_outputs"] == "upstream_failed"
    (cluster,) = new_clusters(before)
    assert cluster.state == "TERMINATED"
    (step_id,) = driver.handled
    assert driver.runs[step_id].code == 2
    # The job's own error line ends the step's stderr.gz, where the failure message points;
    # the sensor quotes it in the task's log, the failure report and the alert.
    location = f"s3://{BUCKET}/fruits-features/emr-logs/{cluster.id}/steps/{step_id}/"
    stderr = s3_server.client().get_object(
        Bucket=BUCKET, Key=location[len(f"s3://{BUCKET}/") :] + "stderr.gz"
    )
    last = gzip.decompress(stderr["Body"].read()).decode().strip().splitlines()[-1]
    assert last.startswith("process_fruits_data: error: weights ")
    assert "cannot be loaded into MobileNetV2" in last
    log = capfd.readouterr().out
    assert f"is FAILED: {last} (EMR: " in log
    assert f"Step logs (controller, stderr, stdout): {location}" in log
    assert "Rescheduling task" in log
    assert got["report_failure"] == "success"
    key = run_key(run.run_id)
    report = Path(pipeline_env["FRUITS_RESULTS_DIR"]) / "mini" / key / "report" / "report.html"
    assert str(escape(last)) in report.read_text()  # autoescaped, as the page shows it
    ((subject, message),) = sns_messages(sns_topic)
    assert subject == "[fruits_features] mini run failed in watch_step"
    assert f"Run {run.run_id} of fruits_features (mode mini) failed in task watch_step" in message
    assert last in message
    assert f"/{key}/report/report.html" in message
    assert_aws_would_accept(calls.calls, pipeline_env, alert_sns_topic_arn=sns_topic)


@pytest.mark.long
def test_an_overdue_job_is_announced_once_then_stopped_at_its_timeout_and_its_cluster_ends(
    monkeypatch, pipeline_env, sns_topic, capfd
):
    # Nobody plays EMR: the step stays RUNNING, as a job that hangs would.
    monkeypatch.setenv("FRUITS_ALERT_SNS_TOPIC_ARN", sns_topic)
    monkeypatch.setenv("FRUITS_DEADLINE_SECONDS", "8")
    monkeypatch.setenv("FRUITS_STEP_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("FRUITS_STEP_POLL_SECONDS", "2")
    before = {c.id for c in emr_clusters()}
    dag = load_emr_dag(monkeypatch)

    with record_aws_calls() as calls:
        run = dag.test(run_conf=JOB_CONF)

    assert_step_failed_and_torn_down(run)
    (cluster,) = new_clusters(before)
    assert cluster.state == "TERMINATED"
    # First the deadline (the job still running), once; then the timeout's failure, once.
    (overdue, failed) = sns_messages(sns_topic)
    assert overdue[0] == "[fruits_features] mini run past its deadline"
    assert f"Run {run.run_id} of fruits_features (mode mini)" in overdue[1]
    assert "past its deadline of 8 s (FRUITS_DEADLINE_SECONDS)" in overdue[1]
    assert failed[0] == "[fruits_features] mini run failed in watch_step"
    assert "gave up waiting for step" in failed[1] and "still RUNNING after 60 s" in failed[1]
    # The deferred wait was cut at the deadline to announce it, then resumed.
    assert capfd.readouterr().out.count("running trigger in line") >= 2
    assert_aws_would_accept(calls.calls, pipeline_env, alert_sns_topic_arn=sns_topic)


def test_a_bootstrap_failure_cancels_the_step_and_fails_the_run(
    monkeypatch, pipeline_env, emr_steps, capfd
):
    before = {c.id for c in emr_clusters()}
    emr_steps("BOOTSTRAP_FAILURE")
    dag = load_emr_dag(monkeypatch)

    with record_aws_calls() as calls:
        run = dag.test(run_conf=JOB_CONF)

    assert str(run.state) == "failed"
    assert states(run)["watch_step"] == "failed"
    (cluster,) = new_clusters(before)
    assert cluster.state in ("TERMINATED", "TERMINATED_WITH_ERRORS")
    log = capfd.readouterr().out
    assert (
        f"is CANCELLED: EMR gave no failure details. Cluster "
        f"TERMINATED_WITH_ERRORS: {BOOTSTRAP_FAILURE}." in log
    )
    # The deferrable sensor (the default) deferred; dag.test runs the trigger in line.
    assert "running trigger in line" in log
    assert_aws_would_accept(calls.calls, pipeline_env)


@pytest.mark.parametrize(
    ("faults", "cleaned_by"),
    [
        # EMR made the cluster but answered 500: sent once, never retried, then ended by tag.
        ([("RunJobFlow", "error-after")], "create_cluster"),
        # The cluster exists, then the call that follows is denied.
        ([("DescribeCluster", "deny")], "create_cluster"),
        # And if create_cluster cannot even look its clusters up, the run's last check does.
        ([("RunJobFlow", "error-after"), ("ListClusters", "deny")], "no_cluster_left"),
    ],
    ids=["runjobflow-500", "describe-denied", "cleanup-denied-too"],
)
def test_a_cluster_made_by_a_failed_create_is_never_left_running(
    monkeypatch, pipeline_env, emr_faults, capfd, faults, cleaned_by
):
    for operation, fault in faults:
        emr_faults.inject(operation, fault)
    before = {c.id for c in emr_clusters()}
    dag = load_emr_dag(monkeypatch)

    run = dag.test(run_conf=JOB_CONF)

    assert str(run.state) == "failed"
    got = states(run)
    assert got["create_cluster"] == "failed"
    assert got["no_cluster_left"] == ("success" if cleaned_by == "create_cluster" else "failed")
    assert emr_faults.calls["RunJobFlow"] == 1  # one request, one cluster at most
    (cluster,) = new_clusters(before)
    assert cluster.state == "TERMINATED"
    assert tags_of(cluster)["run_id"] == run.run_id
    log = capfd.readouterr().out
    if cleaned_by == "no_cluster_left":
        assert f"cluster(s) {cluster.id} of run {run.run_id} were still running" in log
    else:
        assert f"terminated the run's cluster(s): {cluster.id}" in log


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
    assert "--pca-components 50 is more than the 24 images this run would process" in (
        capfd.readouterr().out
    )
    # ...or a bad Variable, read at run time by check_inputs.
    db_variables("fruits_core_instance_count", "zero")
    run = dag.test(run_conf=JOB_CONF)
    assert states(run)["check_inputs"] == "failed"
    assert new_clusters(before) == []
    assert (
        "bad FRUITS_CORE_INSTANCE_COUNT (from Variable fruits_core_instance_count): 'zero'"
        in capfd.readouterr().out
    )
    # ...or a cluster the job cannot fit in.
    db_variables("fruits_core_instance_type", "m5.large")
    db_variables("fruits_core_instance_count", "2")
    run = dag.test(run_conf=JOB_CONF)
    assert states(run)["check_inputs"] == "failed"
    assert new_clusters(before) == []
    assert "no YARN sizing known for instance type 'm5.large'" in capfd.readouterr().out


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


def test_a_create_task_killed_mid_call_leaves_no_cluster(
    monkeypatch, pipeline_env, emr_faults, capfd
):
    """EMR made the cluster, then the task was killed before hearing back: Airflow's kill
    (here its execution timeout, as a SIGTERM) interrupts the call, and the operator's on_kill
    ends the run's cluster by tag. (A SIGKILL leaves no such chance: no_cluster_left then
    ends it, as ``cleanup-denied-too`` shows.)"""
    from datetime import timedelta

    emr_faults.inject("RunJobFlow", "hang-after")
    before = {c.id for c in emr_clusters()}
    dag = load_emr_dag(monkeypatch)
    dag.get_task("create_cluster").execution_timeout = timedelta(seconds=5)

    try:
        run = dag.test(run_conf=JOB_CONF)
    finally:
        emr_faults.release()

    assert emr_faults.hanging.is_set()
    got = states(run)
    assert got["create_cluster"] == "failed"
    assert got["no_cluster_left"] == "success"
    (cluster,) = new_clusters(before)
    assert cluster.state == "TERMINATED"
    assert str(run.state) == "failed"
    log = capfd.readouterr().out
    assert "Process timed out" in log
    assert f"terminated the run's cluster(s): {cluster.id}" in log
