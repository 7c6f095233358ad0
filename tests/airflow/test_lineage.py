"""Lineage's Spark conf from Airflow's [openlineage] settings, and the EMR step's parent run.

The run that shows both sides linked (Airflow's task and the Spark job, the bank and the
outputs as datasets) is tests/airflow/test_local_e2e.py's CLI run."""

from __future__ import annotations

from pathlib import Path

import pytest

from fruits_features import lineage
from fruits_features.compute.registry import compute_backend
from fruits_features.plan import RunPlan, build_plan
from fruits_features.run_params import RunParams
from fruits_features.settings import build_config

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "manual__2026-01-02T03:04:05.678901+00:00"
CONFIG = build_config({"bucket": "my-bucket"})
FILE = {"type": "file", "log_file_path": "/var/ol/events.jsonl", "append": True}


def mini_plan(**planned):
    """The plan of a mini run (5 components, 24 images), with ``planned`` as build_plan's."""
    return build_plan(CONFIG, RunParams("mini", 5, 24), RUN_ID, 24, **planned)


PARENT = {
    "spark.openlineage.parentJobNamespace": "default",
    "spark.openlineage.parentJobName": "fruits_features.add_step",
    "spark.openlineage.parentRunId": "01a2-run",
}


@pytest.fixture
def openlineage_env(monkeypatch):
    """Airflow's OpenLineage as configured by the environment of the test (its settings are
    cached per process: cleared before and after)."""
    from airflow.providers.openlineage import conf

    def clear() -> None:
        for name in dir(conf):
            if hasattr(getattr(conf, name), "cache_clear"):
                getattr(conf, name).cache_clear()

    for name in ("AIRFLOW__OPENLINEAGE__TRANSPORT", "OPENLINEAGE_URL", "OPENLINEAGE_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    clear()
    yield monkeypatch
    clear()


@pytest.mark.parametrize(
    ("airflow_file", "spark_file"),
    [
        ("/var/ol/events.jsonl", "/var/ol/events.spark.jsonl"),
        ("/var/ol/events.json", "/var/ol/events.spark.jsonl"),
        ("/var/ol/events", "/var/ol/events.spark.jsonl"),
        ("/var/ol/ol.v1.log", "/var/ol/ol.v1.log.spark.jsonl"),
    ],
)
def test_the_jobs_events_go_to_a_file_beside_airflows(airflow_file, spark_file):
    assert lineage.spark_events_path(airflow_file) == spark_file


def test_transport_follows_airflows():
    assert lineage.transport_conf(FILE, remote=False) == {
        "spark.openlineage.transport.type": "file",
        "spark.openlineage.transport.location": "/var/ol/events.spark.jsonl",
    }
    # The driver on a cluster cannot write on the Airflow machine: a file on its node.
    remote = lineage.transport_conf(FILE, remote=True)
    assert remote["spark.openlineage.transport.location"] == (
        f"{lineage.REMOTE_EVENTS_DIR}/events.spark.jsonl"
    )
    assert lineage.transport_conf({"type": "kafka"}, remote=False) == {
        "spark.openlineage.transport.type": "console"
    }


def test_listener_conf_and_its_pinned_package():
    pins = (REPO / lineage.REQUIREMENTS_NAME).read_text()
    assert "\nio.openlineage:openlineage-spark_2.12:" in pins
    transport = lineage.transport_conf(FILE, remote=False)
    local = lineage.spark_conf(transport, "ns")
    assert local == {
        "spark.extraListeners": lineage.LISTENER,
        "spark.openlineage.namespace": "ns",
        **transport,
    }
    assert lineage.is_on(local) and lineage.shipped_jar(local) is None
    jar = "s3://b/artifacts/r/openlineage-spark.jar"
    assert lineage.shipped_jar(lineage.spark_conf(transport, "ns", jar)) == jar


def test_off_unless_configured(openlineage_env):
    assert not lineage.enabled()
    assert lineage.plan_conf(remote=False) == {}
    plan = mini_plan()
    assert plan.invocation().spark_conf == {} and not lineage.is_on(plan.lineage)


def test_a_file_transport_gives_the_job_a_listener_writing_beside_it(openlineage_env, tmp_path):
    events = tmp_path / "ol" / "events.jsonl"
    openlineage_env.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT", f'{{"type": "file", "log_file_path": "{events}"}}'
    )
    openlineage_env.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "nightly")
    local = lineage.plan_conf(remote=False)
    assert local == {
        "spark.extraListeners": lineage.LISTENER,
        "spark.openlineage.namespace": "nightly",
        "spark.openlineage.transport.type": "file",
        "spark.openlineage.transport.location": str(tmp_path / "ol" / "events.spark.jsonl"),
    }
    jar = "s3://b/artifacts/r/openlineage-spark.jar"
    remote = lineage.plan_conf(remote=True, jar_uri=jar)
    assert remote["spark.jars"] == jar  # shipped with the artifacts: no download at step time
    assert lineage.plan_conf(remote=False, jar_uri=jar).get("spark.jars") is None
    assert remote["spark.openlineage.transport.location"].startswith(lineage.REMOTE_EVENTS_DIR)


def test_emr_steps_carry_the_listener_and_get_the_parent_run_after_spark_submit():
    plan = mini_plan(
        maintain=True,
        lineage=lineage.spark_conf({}, "ns", "io.openlineage:openlineage-spark_2.12:1.53.0"),
    )
    assert RunPlan.from_xcom(plan.to_xcom()) == plan
    steps = compute_backend("emr").plan_section(CONFIG, plan)["emr_steps"]
    assert len(steps) == 2 and all(lineage.is_step_on(step) for step in steps)
    linked = lineage.step_with_parent(steps[0], PARENT)
    args = linked["HadoopJarStep"]["Args"]
    at = args.index("spark-submit") + 1
    assert args[at : at + 6] == [
        *("--conf", "spark.openlineage.parentJobNamespace=default"),
        *("--conf", "spark.openlineage.parentJobName=fruits_features.add_step"),
        *("--conf", "spark.openlineage.parentRunId=01a2-run"),
    ]
    # The rest as planned (the planned step itself unchanged: a copy is linked).
    assert args[:at] + args[at + 6 :] == steps[0]["HadoopJarStep"]["Args"]
    # Once linked, never twice; and a step without the listener (lineage off) is untouched.
    assert lineage.step_with_parent(linked, PARENT) == linked
    off = compute_backend("emr").plan_section(CONFIG, mini_plan())["emr_steps"][0]
    assert not lineage.is_step_on(off) and lineage.step_with_parent(off, PARENT) == off


def test_emr_steps_load_the_shipped_jars_and_the_listeners_in_one_spark_jars():
    """Spark keeps one value per key: the listener's jar and the Delta Kernel jars a run
    ships must share ``spark.jars``, not overwrite each other."""
    kernel = ("s3://b/artifacts/r/delta-kernel-api-3.3.2.jar", "s3://b/artifacts/r/k2.jar")
    jar = "s3://b/artifacts/r/openlineage-spark.jar"
    plan = mini_plan(maintain=True, lineage=lineage.spark_conf({}, "ns", jar), jars=kernel)
    assert RunPlan.from_xcom(plan.to_xcom()) == plan
    for step in compute_backend("emr").plan_section(CONFIG, plan)["emr_steps"]:
        args = step["HadoopJarStep"]["Args"]
        loaded = [a.split("=", 1)[1] for a in args if a.startswith("spark.jars=")]
        assert loaded == [",".join([*kernel, jar])]
    alone = mini_plan(jars=kernel)
    assert alone.spark_conf() == {"spark.jars": ",".join(kernel)}
