"""EMR mode under the real scheduler and a real triggerer process, EMR on moto, S3 on SeaweedFS.

moto runs in this process, so the test plays EMR's part: once the step sensor has deferred to
the triggerer, the step fails, its log pushed where EMR pushes it.
"""

from __future__ import annotations

import gzip

import pytest

from tests.airflow.conftest import BUCKET, JOB_CONF, emr_clusters
from tests.airflow.test_alerts import DRIVER_LOG

pytestmark = [pytest.mark.slow, pytest.mark.long]


def test_deferred_sensor_resumed_by_the_triggerer_fails_the_run_and_the_cluster_ends(
    emr_stack, s3_server
):
    before = {c.id for c in emr_clusters()}
    emr_stack.unpause()

    response = emr_stack.trigger(JOB_CONF)

    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    # The sensor gives its slot back and the triggerer process takes the wait over.
    waiting = emr_stack.wait_for_task(
        run_id,
        "watch_step",
        lambda ti: ti["state"] == "deferred" and ti["triggerer_job"] is not None,
        timeout=300,
    )
    assert waiting["trigger"]["classpath"].endswith("EmrStepSensorTrigger")
    assert waiting["triggerer_job"]["job_type"] == "TriggererJob"
    (cluster,) = [c for c in emr_clusters() if c.id not in before]
    (step,) = cluster.steps
    assert step.state == "RUNNING"
    # The job failed in a task of the feature stage; EMR pushed the step's stderr.gz.
    folder = f"fruits-features/emr-logs/{cluster.id}/steps/{step.id}/"
    s3_server.client().put_object(
        Bucket=BUCKET, Key=folder + "stderr.gz", Body=gzip.compress(DRIVER_LOG.encode())
    )
    step.state = "FAILED"

    run = emr_stack.wait_for_run(run_id, timeout=300)

    states = emr_stack.task_states(run_id)
    assert run["state"] == "failed", states
    assert states["watch_step"] == "failed"
    assert states["terminate_cluster"] == "success"
    assert states["no_cluster_left"] == "success"
    assert states["download_outputs"] == "upstream_failed"
    assert cluster.state == "TERMINATED"
    # Resumed after the trigger fired: the task's log, read through the REST API, names the
    # step, quotes the job's own error line and the failed task's traceback, and says where
    # the whole log is.
    log = emr_stack.task_log(run_id, "watch_step")
    assert f"step {step.id} (fruits-features mini " in log
    error_line = DRIVER_LOG.splitlines()[-2]
    assert error_line.startswith("process_fruits_data: error: ")
    assert f"is FAILED: {error_line} (EMR: EMR gave no failure details)." in log
    assert "ValueError: image s3://bank/Training/Apple 6/r_41_100.jpg" in log
    location = f"s3://{BUCKET}/{folder}"
    assert f"Step logs (controller, stderr, stdout): {location}" in log
    assert states["report_failure"] == "success"
