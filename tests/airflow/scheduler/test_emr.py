"""EMR mode under the real scheduler and a real triggerer process, EMR on moto, S3 on SeaweedFS.

moto runs in this process, so the test plays EMR's part: once the step sensor has deferred to
the triggerer, the step fails.
"""

from __future__ import annotations

import pytest

from tests.airflow.conftest import BUCKET, JOB_CONF, emr_clusters

pytestmark = [pytest.mark.slow, pytest.mark.long]


def test_deferred_sensor_resumed_by_the_triggerer_fails_the_run_and_the_cluster_ends(emr_stack):
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
    step.state = "FAILED"

    run = emr_stack.wait_for_run(run_id, timeout=300)

    states = emr_stack.task_states(run_id)
    assert run["state"] == "failed", states
    assert states["watch_step"] == "failed"
    assert states["terminate_cluster"] == "success"
    assert states["no_cluster_left"] == "success"
    assert states["download_outputs"] == "upstream_failed"
    assert cluster.state == "TERMINATED"
    # Resumed after the trigger fired: the failure names the step and where its logs are.
    log = emr_stack.task_log(run_id, "watch_step")
    assert f"step {step.id} (fruits-features mini " in log
    assert "is FAILED: EMR gave no failure details." in log
    location = f"s3://{BUCKET}/fruits-features/emr-logs/{cluster.id}/steps/{step.id}/"
    assert f"Step logs (controller, stderr, stdout): {location}" in log
