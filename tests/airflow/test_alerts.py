"""A failed night explains itself: the job's error out of its log, alerts through real
notifiers (SNS on moto), the deadline announced once; the sensor against moto and SeaweedFS."""

from __future__ import annotations

import gzip
import json
import os
import sys
import time

import pytest

from fruits_features.alerts import AlertSettings, Notifiers, failure_alert, job_deadline
from fruits_features.compute.spark_process import SparkJobError, run_streaming
from fruits_features.config import ConfigError
from fruits_features.step_logs import last_error_line, step_error
from tests.airflow.conftest import (
    BUCKET,
    aws_connection,
    moto_emr,
    sns_messages,
    start_moto_cluster,
)

# What a driver's log holds when a task failed in a pandas UDF: Spark quotes the Python
# traceback inside the Java exception, the job then prints its own error line.
DRIVER_LOG = """\
25/12/07 02:14:03 INFO DAGScheduler: ResultStage 4 (count at features.py:88) failed
25/12/07 02:14:03 ERROR TaskSetManager: Task 3 in stage 4.0 failed 4 times; aborting job
org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 4.0 failed
Caused by: org.apache.spark.api.python.PythonException: Traceback (most recent call last):
  File "/mnt/yarn/appcache/fruits_job.zip/fruits_job/features.py", line 61, in embed
    batch = preprocess(images)
  File "/mnt/yarn/appcache/fruits_job.zip/fruits_job/preprocess.py", line 40, in prepare
    raise ValueError(f"image {path} has {shape} pixels")
ValueError: image s3://bank/Training/Apple 6/r_41_100.jpg has (0, 0) pixels
\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException(PythonRunner.scala:572)
\tat org.apache.spark.sql.execution.python.PythonArrowOutput.read(PythonArrowOutput.scala:118)
25/12/07 02:14:04 INFO SparkContext: Invoking stop() from shutdown hook
process_fruits_data: error: features failed: image s3://bank/Training/Apple 6/r_41_100.jpg: (0, 0)
25/12/07 02:14:05 INFO ShutdownHookManager: Shutdown hook called
"""


def test_the_jobs_error_line_and_the_failed_tasks_traceback_are_found():
    error = step_error(DRIVER_LOG.splitlines())
    assert error.line.startswith("process_fruits_data: error: features failed: image")
    assert error.excerpt[0] == "Traceback (most recent call last):"
    assert "ValueError: image s3://bank/Training/Apple 6/r_41_100.jpg has (0, 0) pixels" in (
        error.excerpt
    )
    assert error.excerpt[-1] == error.line  # the traceback, then what led to the error line
    assert len(error.excerpt) == len(set(error.excerpt))  # no line twice
    # The traceback's block ends on its exception line, before the Java frames.
    assert error.excerpt[5].startswith("ValueError: image s3://bank/")


def test_last_error_line_prefers_the_jobs_own_then_exceptions_over_noise():
    lines = [
        "INFO a",
        "Traceback (most recent call last):",
        "ValueError: no image left after decoding",
        "INFO ShutdownHookManager: Deleting directory /tmp/x",
    ]
    assert last_error_line(lines) == "ValueError: no image left after decoding"
    assert last_error_line(["only line"]) == "only line"
    assert last_error_line([]) == "no output"


def test_a_local_job_that_fails_raises_its_error_line_then_the_excerpt():
    script = f"import sys\nsys.stdout.write({DRIVER_LOG!r})\nsys.exit(1)\n"
    with pytest.raises(SparkJobError) as raised:
        run_streaming([sys.executable, "-c", script], dict(os.environ), 30, lambda line: None)
    first, *rest = str(raised.value).splitlines()
    assert first.startswith("spark-submit exited 1: process_fruits_data: error: features fa")
    assert "Traceback (most recent call last):" in rest
    assert any(line.startswith("ValueError: image s3://bank/") for line in rest)


def test_a_local_job_past_its_deadline_is_announced_once_and_goes_on():
    calls: list[float] = []
    script = "import time; time.sleep(2.5); print('done')"
    run_streaming(
        [sys.executable, "-c", script],
        dict(os.environ),
        30,
        lambda line: None,
        deadline=(1.0, lambda elapsed: calls.append(time.monotonic())),
    )
    assert len(calls) == 1  # the job still ended well: the deadline only tells
    calls.clear()
    run_streaming(
        [sys.executable, "-c", "pass"],
        dict(os.environ),
        30,
        lambda line: None,
        deadline=(1.0, calls.append),
    )
    time.sleep(1.5)
    assert calls == []  # a job done before its deadline is never announced


def test_the_derived_deadline_grows_with_the_planned_images_and_yields_to_the_timeout():
    settings = AlertSettings()
    small = job_deadline(settings, 300, 7200)
    large = job_deadline(settings, 60_000, 7200)
    assert small and large and small["seconds"] < large["seconds"] < 7200
    assert "60000 planned images at 20/s" in large["why"]
    assert job_deadline(settings, 10_000_000, 7200) is None  # the timeout tells first
    fixed = job_deadline(AlertSettings(deadline_seconds=90), 10_000_000, 7200)
    assert fixed == {"seconds": 90, "timeout_seconds": 7200, "why": "FRUITS_DEADLINE_SECONDS"}


def test_an_alert_fits_sns_and_keeps_the_error_whole_when_short():
    alert = failure_alert(
        dag_id="fruits_features",
        run_id="manual__2026-12-07T02:00:00+00:00",
        mode="full",
        task_id="watch_step",
        error="x" * 300 + "\nsecond line",
        report="s3://b/runs/full/r/report/report.html",
    )
    assert len(alert.subject) <= 100 and "\n" not in alert.subject
    assert "failed in task watch_step" in alert.message
    assert "x" * 300 + "\nsecond line" in alert.message
    assert "Report: s3://b/runs/full/r/report/report.html" in alert.message


def test_a_notifier_that_cannot_be_imported_is_a_clear_configuration_error():
    with pytest.raises(ConfigError, match=r"FRUITS_ALERT_NOTIFIER: 'no_such\.Notifier'"):
        Notifiers(notifier="no_such.Notifier").notifier_class()


# --- against moto's SNS and EMR, SeaweedFS's S3


def test_the_sns_notifier_and_a_notifier_named_by_its_class_both_publish(
    monkeypatch, s3_server, moto_server, sns_topic
):
    connection = aws_connection(s3_server.endpoint, moto_server, sns_endpoint=moto_server)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection)
    generic = {
        "target_arn": sns_topic,
        "message": "{message}",
        "subject": "via class: {subject}",
        "region_name": "eu-west-1",
    }
    notifiers = Notifiers(
        sns_topic_arn=sns_topic,
        aws_conn_id="aws_default",
        region="eu-west-1",
        notifier="airflow.providers.amazon.aws.notifications.sns.SnsNotifier",
        notifier_kwargs=json.dumps(generic),
    )
    alert = failure_alert(
        dag_id="fruits_features",
        run_id="r1",
        mode="mini",
        task_id="watch_step",
        error="process_fruits_data: error: {{ not a template }}",
        report=None,
    )
    assert notifiers.send(alert) == 2
    got = sns_messages(sns_topic)
    assert [subject for subject, _ in got] == [alert.subject, f"via class: {alert.subject}"]
    assert [message for _, message in got] == [alert.message] * 2
    assert "{{ not a template }}" in got[0][1]  # text, never rendered as Jinja


@pytest.fixture
def logged_cluster(monkeypatch, s3_server, moto_server) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(s3_server.endpoint, moto_server))
    emr = moto_emr(moto_server)
    cluster_id = start_moto_cluster(emr, "step-log-test")
    return cluster_id


def failed_step_sensor(cluster_id: str, log_wait_seconds: float):
    from fruits_features.compute.emr_sensor import EmrStepWatchSensor

    sensor = EmrStepWatchSensor(
        task_id="watch_step",
        job_flow_id=cluster_id,
        step_id="s-FAILED",
        region_name="eu-west-1",
        watch={
            "poll_seconds": 5,
            "timeout_seconds": 60,
            "deferrable": False,
            "log_wait_seconds": log_wait_seconds,
        },
    )
    sensor._apply_watch()
    return sensor


def test_a_failed_steps_message_quotes_the_jobs_error_from_its_stderr(
    logged_cluster, s3_server, monkeypatch
):
    from fruits_features.compute import emr_sensor

    folder = f"s3://{BUCKET}/emr-logs/{logged_cluster}/steps/s-FAILED/"
    monkeypatch.setattr(
        emr_sensor.EmrStepWatchSensor,
        "_cluster_context",
        lambda self: (folder, ""),
    )
    s3_server.client().put_object(
        Bucket=BUCKET,
        Key=f"emr-logs/{logged_cluster}/steps/s-FAILED/stderr.gz",
        Body=gzip.compress(DRIVER_LOG.encode()),
    )
    sensor = failed_step_sensor(logged_cluster, log_wait_seconds=5)
    step = {"Name": "fruits-features mini r1", "Status": {"State": "FAILED"}}
    message = sensor.failure_message_from_response({"Step": step})
    first, *excerpt = message.splitlines()
    assert first.startswith(
        f"step s-FAILED (fruits-features mini r1) on cluster {logged_cluster} is FAILED: "
        "process_fruits_data: error: features failed: image s3://bank/"
    )
    assert first.endswith(f"Step logs (controller, stderr, stdout): {folder}")
    assert "Traceback (most recent call last):" in excerpt


def test_a_step_log_that_never_arrives_is_waited_for_a_bounded_time(
    logged_cluster, monkeypatch, capfd
):
    from fruits_features.compute import emr_sensor

    folder = f"s3://{BUCKET}/emr-logs/{logged_cluster}/steps/s-NEVER/"
    monkeypatch.setattr(
        emr_sensor.EmrStepWatchSensor, "_cluster_context", lambda self: (folder, "")
    )
    sensor = failed_step_sensor(logged_cluster, log_wait_seconds=2)
    step = {"Name": "job", "Status": {"State": "FAILED"}}
    started = time.monotonic()
    message = sensor.failure_message_from_response({"Step": step})
    waited = time.monotonic() - started
    assert 2 <= waited < 10
    assert "is FAILED: EMR gave no failure details." in message
    assert (
        f"EMR had not pushed the step's log to {folder}stderr.gz after 2 s "
        "(FRUITS_STEP_LOG_WAIT_SECONDS)" in capfd.readouterr().out
    )
