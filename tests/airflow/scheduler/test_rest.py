"""The DAG under a real scheduler (LocalExecutor), driven through the REST API v2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from fruits_features.config import RunDefaults
from fruits_features.run_params import PARAM_NAMES
from fruits_features.s3_layout import run_key
from tests.airflow.conftest import BUCKET
from tests.airflow.scheduler.stack import TERMINAL

pytestmark = [pytest.mark.slow, pytest.mark.long]

TASKS = {
    "check_inputs",
    "upload_artifacts",
    "run_spark_locally",
    "maintain_feature_store",
    "download_outputs",
    "validate_outputs",
    "build_run_report",
    "publish_pca",
    "report_failure",
}


def test_starting_again_starts_no_second_copy(local_stack):
    assert {run["state"] for run in local_stack.runs()} <= TERMINAL  # no spark-submit running
    pids = local_stack.pids()
    leaders = {pids[c] for c in ("scheduler", "dag-processor", "triggerer")}
    jobs = ["DagProcessorJob", "SchedulerJob", "TriggererJob"]
    assert local_stack.session_leaders() == leaders
    assert local_stack.running_jobs() == jobs

    again = local_stack.script("start")

    assert again.returncode == 0, again.stdout
    assert "already running" in again.stdout
    assert local_stack.base_url in again.stdout
    assert local_stack.pids() == pids
    assert local_stack.session_leaders() == leaders
    assert local_stack.running_jobs() == jobs


def test_the_paused_dag_is_due_so_unpausing_starts_the_latest_interval(local_stack):
    """What the README says: with catchup=False, the latest nightly tick is already due."""
    dag = local_stack.client.get("/dags/fruits_features").json()
    defaults = RunDefaults()
    assert dag["timetable_summary"] == defaults.schedule
    due = datetime.fromisoformat(dag["next_dagrun_run_after"])
    now = datetime.now(UTC)
    assert due <= now
    # One of the two latest ticks (the dag-processor may not have seen the very latest yet).
    ticks = croniter(defaults.schedule, now.astimezone(ZoneInfo(defaults.schedule_timezone)))
    latest = [ticks.get_prev(datetime) for _ in range(2)]
    assert due in latest, (due, latest)
    assert now - due < timedelta(days=2)


def test_a_bad_mode_is_refused_by_the_api(local_stack):
    runs_before = len(local_stack.runs())

    response = local_stack.trigger({"mode": "nope"})

    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "Invalid input for param mode: 'nope' is not one of ['mini', 'apples', 'full']" in detail
    assert len(local_stack.runs()) == runs_before


def test_an_unknown_conf_key_fails_check_inputs_and_its_log_names_it(local_stack):
    local_stack.unpause()

    response = local_stack.trigger({"mdoe": "mini"})

    # The API accepts keys that are no params; check_inputs must stop the run.
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    run = local_stack.wait_for_run(run_id, timeout=300)
    assert run["state"] == "failed"
    states = local_stack.task_states(run_id)
    assert states.pop("check_inputs") == "failed"
    # No plan, no failure report (the alert and check_inputs' log tell).
    assert states.pop("report_failure") == "skipped"
    assert set(states.values()) == {"upstream_failed"}
    assert "mdoe" not in PARAM_NAMES
    log = local_stack.task_log(run_id, "check_inputs")
    assert "RunParamsError: unknown run conf key(s): mdoe" in log


def test_mini_run_succeeds_and_its_asset_event_carries_the_pca_uri(local_stack, s3_server):
    local_stack.unpause()

    response = local_stack.trigger({"mode": "mini"})

    assert response.status_code == 200, response.text
    created = response.json()
    assert (created["run_type"], created["triggered_by"]) == ("manual", "rest_api")
    run_id = created["dag_run_id"]
    run = local_stack.wait_for_run(run_id, timeout=900)
    tis = local_stack.task_instances(run_id)
    assert run["state"] == "success", {task: ti["state"] for task, ti in tis.items()}
    assert set(tis) == TASKS
    # A new store: its first maintenance is a week after its table's creation.
    assert tis.pop("maintain_feature_store")["state"] == "skipped"
    assert tis.pop("report_failure")["state"] == "skipped"  # nothing failed
    assert {ti["state"] for ti in tis.values()} == {"success"}
    log = local_stack.task_log(run_id, "run_spark_locally")
    # The job read the bank in place on the local S3, and its log reached the task log.
    assert f"selected from 338 files under s3://{BUCKET}/" in log
    assert "Spark job finished" in log

    prefix = f"{local_stack.env['FRUITS_OUTPUT_PREFIX']}/mini/{run_key(run_id)}"
    (event,) = local_stack.asset_events(run_id)
    assert event["name"] == "fruits_features_pca"
    assert event["source_task_id"] == "publish_pca"
    extra = event["extra"]
    assert extra["uri"] == f"s3://{BUCKET}/{prefix}/pca/parquet/"
    assert (extra["mode"], extra["pca_components"]) == ("mini", 50)
    assert (extra["images"], extra["features"], extra["errors"]) == (300, 300, 0)
    keys = s3_server.keys(f"{prefix}/pca/parquet/")
    assert [k for k in keys if k.endswith(".parquet")], keys
