"""The step sensor's failure message, against moto's EMR (real API calls, no patched client)."""

from __future__ import annotations

import pytest

from tests.airflow.conftest import aws_connection, moto_emr, start_moto_cluster


@pytest.fixture
def cluster_id(monkeypatch, moto_server) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection("http://unused", moto_server))
    return start_moto_cluster(moto_emr(moto_server), "sensor-test")


def make_sensor(cluster_id: str):
    from fruits_features.compute.emr_sensor import EmrStepWatchSensor

    return EmrStepWatchSensor(
        task_id="watch_step",
        job_flow_id=cluster_id,
        step_id="s-STEP",
        region_name="eu-west-1",
        watch={"poll_seconds": 5, "timeout_seconds": 60, "deferrable": False},
    )


def test_failure_details_and_log_folder(cluster_id, monkeypatch):
    sensor = make_sensor(cluster_id)
    # EMR's own details, without a step log to quote (test_alerts.py quotes one from S3).
    monkeypatch.setattr(sensor, "_job_error", lambda location: None)
    step = {
        "Name": "fruits-features mini run",
        "Status": {
            "State": "FAILED",
            "FailureDetails": {
                "Reason": "Unknown Error.",
                "Message": "process_fruits_data: error: no image under s3://b/in/Training/",
                "LogFile": f"s3://logs-bucket/emr-logs/{cluster_id}/steps/s-STEP/stderr.gz",
            },
        },
    }
    message = sensor.failure_message_from_response({"Step": step})
    assert message == (
        f"step s-STEP (fruits-features mini run) on cluster {cluster_id} is FAILED: "
        "Unknown Error. (process_fruits_data: error: no image under s3://b/in/Training/; "
        f"log file s3://logs-bucket/emr-logs/{cluster_id}/steps/s-STEP/stderr.gz). "
        f"Step logs (controller, stderr, stdout): s3://logs-bucket/emr-logs/{cluster_id}/steps/s-STEP/"
    )


def test_watch_settings_apply_at_run_time(cluster_id):
    sensor = make_sensor(cluster_id)
    sensor._apply_watch()
    assert (sensor.poke_interval, sensor.timeout, sensor.max_attempts) == (5.0, 60.0, 12)
    assert sensor.deferrable is False


def _running_step(cluster_id: str, moto_server: str) -> str:
    emr = moto_emr(moto_server)
    steps = [
        {
            "Name": "job",
            "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]},
        }
    ]
    return emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=steps)["StepIds"][0]


def test_a_step_still_running_when_the_trigger_gives_up_is_a_timeout(cluster_id, moto_server):
    from airflow.providers.common.compat.sdk import AirflowSensorTimeout

    sensor = make_sensor(cluster_id)
    sensor.step_id = _running_step(cluster_id, moto_server)
    sensor._apply_watch()
    with pytest.raises(AirflowSensorTimeout, match=r"still RUNNING after 60 s"):
        sensor.execute_complete({}, {"status": "error", "message": "max attempts reached"})


def test_the_deferral_outlives_the_trigger(cluster_id, moto_server, monkeypatch):
    sensor = make_sensor(cluster_id)
    sensor.step_id = _running_step(cluster_id, moto_server)
    sensor.watch = {"poll_seconds": 5, "timeout_seconds": 60, "deferrable": True}
    deferred = {}
    monkeypatch.setattr(sensor, "defer", lambda **kwargs: deferred.update(kwargs))
    monkeypatch.setattr(
        "airflow.providers.amazon.aws.sensors.emr.EmrClusterLink.persist", lambda **_: None
    )
    monkeypatch.setattr(
        "airflow.providers.amazon.aws.sensors.emr.EmrLogsLink.persist", lambda **_: None
    )

    sensor.execute({})

    trigger = deferred["trigger"]
    # n attempts of the waiter sleep n - 1 times between them.
    budget = trigger.waiter_delay * (trigger.attempts - 1)
    assert budget == 60
    # The trigger reports its own end; the deferral timeout only catches a dead trigger.
    assert deferred["timeout"].total_seconds() > budget + 60
