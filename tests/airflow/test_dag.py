"""The DAG file: imports cleanly (no network, no database), its graph, schedule and params."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "fruits_features_dag.py"

EMR_GRAPH = {
    # task: upstream task ids (check_inputs feeds every task its part of the plan)
    "check_inputs": set(),
    "upload_artifacts": {"check_inputs"},
    "create_cluster": {"check_inputs", "upload_artifacts"},
    "add_step": {"check_inputs", "create_cluster"},
    "watch_step": {"check_inputs", "create_cluster", "add_step"},
    # The feature store's maintenance, the cluster's second step when it is due.
    "watch_maintenance": {"check_inputs", "create_cluster", "watch_step"},
    "terminate_cluster": {"check_inputs", "create_cluster", "add_step", "watch_maintenance"},
    # Whatever happened: no cluster tagged with the run may be left running.
    "no_cluster_left": {"check_inputs", "terminate_cluster"},
    "download_outputs": {"check_inputs", "watch_step"},
    "validate_outputs": {"check_inputs", "download_outputs"},
    # Last: a run is its mode's last success (and the next unchanged night is skipped) only
    # when its report was built.
    "publish_pca": {"check_inputs", "validate_outputs", "build_run_report"},
    # After the teardown, so that the report has the cluster's whole wall time and cost.
    "build_run_report": {"check_inputs", "validate_outputs", "create_cluster", "terminate_cluster"},
    # Only when one of these failed (or could not run): the failed run's report.
    "report_failure": {"watch_step", "download_outputs", "validate_outputs", "build_run_report"},
}
LOCAL_GRAPH = {
    "check_inputs": set(),
    "upload_artifacts": {"check_inputs"},
    "run_spark_locally": {"check_inputs", "upload_artifacts"},
    "maintain_feature_store": {"check_inputs", "run_spark_locally"},
    "download_outputs": {"check_inputs", "run_spark_locally"},
    "validate_outputs": {"check_inputs", "download_outputs"},
    "publish_pca": {"check_inputs", "validate_outputs", "build_run_report"},
    "build_run_report": {"check_inputs", "validate_outputs"},
    "report_failure": {
        "run_spark_locally",
        "download_outputs",
        "validate_outputs",
        "build_run_report",
    },
}


@pytest.fixture
def no_network(monkeypatch):
    """Parsing must not open a socket (no S3, no EMR, no API server)."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access while parsing the DAG")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def load_dag(monkeypatch, compute: str | None, **env: str):
    from airflow.dag_processing.dagbag import DagBag

    if compute is not None:
        monkeypatch.setenv("FRUITS_COMPUTE", compute)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    assert list(bag.dags) == ["fruits_features"]
    return bag.dags["fruits_features"]


def graph(dag) -> dict[str, set[str]]:
    return {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(("compute", "expected"), [(None, EMR_GRAPH), ("local", LOCAL_GRAPH)])
def test_dag_imports_and_pins_the_graph(monkeypatch, compute, expected):
    dag = load_dag(monkeypatch, compute)
    assert graph(dag) == expected
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert "fruits-features" in dag.tags


@pytest.mark.usefixtures("no_network")
def test_cluster_is_torn_down_whatever_happens(monkeypatch):
    dag = load_dag(monkeypatch, "emr")
    create, add = dag.get_task("create_cluster"), dag.get_task("add_step")
    terminate = dag.get_task("terminate_cluster")
    assert create.is_setup and add.is_setup
    assert terminate.is_teardown
    assert terminate.trigger_rule == "all_done_setup_success"
    # The last check runs whatever failed before it, a failed create_cluster included.
    assert dag.get_task("no_cluster_left").trigger_rule == "all_done"
    # A failed step fails the sensor, so the run fails even though the teardown succeeds.
    # (and the report and the publication, downstream of both, are upstream_failed).
    # The failure report is a leaf too, but runs only on a failure: it never turns a failed
    # run green (publish_pca, upstream_failed then, is still a leaf).
    assert {t.task_id for t in dag.leaves} == {"publish_pca", "no_cluster_left", "report_failure"}
    assert dag.get_task("report_failure").trigger_rule == "one_failed"


@pytest.mark.usefixtures("no_network")
def test_clearing_the_sensor_makes_a_new_cluster_and_step(monkeypatch):
    # What Airflow clears with a task: its setups and teardowns. The old step id belongs to a
    # cluster the teardown ended, so add_step must run again on the new cluster.
    dag = load_dag(monkeypatch, "emr")
    cleared = dag.partial_subset(["watch_step"], include_downstream=False, include_upstream=False)
    assert set(cleared.task_ids) == {
        "create_cluster",
        "add_step",
        "watch_step",
        "terminate_cluster",
    }


def test_no_database_access_at_parse_time(monkeypatch):
    from airflow.sdk import Variable

    def refuse(*args, **kwargs):
        raise AssertionError("Variable read at parse time")

    monkeypatch.setattr(Variable, "get", refuse)
    load_dag(monkeypatch, "emr")


@pytest.mark.usefixtures("no_network")
def test_schedule_and_defaults_come_from_config(monkeypatch):
    dag = load_dag(monkeypatch, "emr")
    timetable = dag.timetable
    assert type(timetable).__name__ == "CronTriggerTimetable"
    assert timetable.expression == "0 2 * * *"
    assert str(timetable.timezone) == "Europe/Paris"
    assert dag.params["mode"] == "full"
    assert dag.params["pca_components"] == 50
    assert dag.params["limit"] is None
    assert dag.params["engine"] == "onnxruntime"
    assert (dag.params["reuse_features"], dag.params["force"]) == (True, False)

    dag = load_dag(
        monkeypatch,
        "emr",
        FRUITS_SCHEDULE="30 5 * * 1",
        FRUITS_SCHEDULE_TIMEZONE="UTC",
        FRUITS_SCHEDULED_MODE="apples",
        FRUITS_PCA_COMPONENTS="20",
        FRUITS_ENGINE="tensorflow",
    )
    assert dag.params["engine"] == "tensorflow"
    assert dag.timetable.expression == "30 5 * * 1"
    assert dag.params["mode"] == "apples"
    assert dag.params["pca_components"] == 20


def test_bad_config_is_an_import_error_naming_the_variable(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FRUITS_COMPUTE", "kubernetes")
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert "FRUITS_COMPUTE" in "".join(bag.import_errors.values())


def test_params_form(monkeypatch):
    dag = load_dag(monkeypatch, "emr")
    mode = dag.params.get_param("mode")
    assert mode.schema["enum"] == ["mini", "apples", "full"]
    assert "300 Apple images" in mode.description
    assert "6,400" in mode.description
    assert "67,692" in mode.description
    assert set(mode.schema["values_display"]) == {"mini", "apples", "full"}
    # The synthetic engine is for tests and benchmarks: never in the form.
    engine = dag.params.get_param("engine")
    assert engine.schema["enum"] == ["onnxruntime", "tensorflow", "openvino"]


@pytest.mark.parametrize(
    ("conf", "ok"),
    [
        ({"mode": "mini", "pca_components": 5, "limit": 24}, True),
        ({"mode": "apples"}, True),
        ({"pca_components": 1280, "limit": None}, True),
        ({"mode": "pears"}, False),
        ({"pca_components": 0}, False),
        ({"pca_components": 1281}, False),
        ({"pca_components": "five"}, False),
        ({"limit": 0}, False),
        ({"reuse_features": False, "force": True}, True),
        ({"force": "yes"}, False),
        ({"reuse_features": 1}, False),
        ({"engine": "synthetic"}, False),
    ],
)
def test_params_validation(monkeypatch, conf, ok):
    from airflow.sdk.definitions.param import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    # The path a trigger takes: the serialized DAG's params merged with the run conf.
    dag = load_dag(monkeypatch, "emr")
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    merged = scheduler_dag.params.deep_merge(conf)
    if ok:
        merged.validate()
    else:
        with pytest.raises(ParamValidationError):
            merged.validate()


def test_plugin_manager_leaves_the_package_alone():
    # Airflow exec's every .py under plugins/ as a top-level module named after the file
    # (config, tasks, __main__, ...); fruits_features/.airflowignore keeps it out.
    from airflow._shared.module_loading.file_discovery import find_path_from_directory

    seen = list(find_path_from_directory(str(REPO / "plugins"), ".airflowignore"))
    assert [p for p in seen if "fruits_features" in p] == []
