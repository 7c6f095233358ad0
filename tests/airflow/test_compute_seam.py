"""The compute seam: a backend is one module plus one registry line, and the DAG runs it.

The fake backend below is such a module. Its one task publishes the outputs of a real run of
the job (what a backend's compute produces); everything around it (checks, upload, download,
validation, report, asset) is the DAG's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from fruits_features.compute.base import Segment
from fruits_features.compute.facts import ComputeFacts, Fact
from fruits_features.config import PipelineConfig, SettingsGroup, setting
from fruits_features.plan import RunPlan
from tests.airflow.conftest import JOB_CONF, QUIET_TEST_CLIENT, S3Server, publish_job_outputs

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "fruits_features_dag.py"


class FakeSettings(SettingsGroup):
    title: ClassVar[str] = "Fake compute"

    fake_greeting: str = setting("hello", "what the fake backend says in the report")


class FakeBackend:
    """Computes nothing: publishes a real run's outputs where the plan says."""

    name = "fake"
    settings = FakeSettings
    remote_driver = False

    def __init__(self, s3: S3Server, outputs: Path) -> None:
        self.s3, self.outputs = s3, outputs

    def plan_section(self, config: PipelineConfig, plan: RunPlan) -> dict[str, Any]:
        return {"fake": {"greeting": config.group(FakeSettings).fake_greeting}}

    def segment(self, plan: Any) -> Segment:
        from airflow.sdk import task

        @task
        def fake_compute(plan: dict[str, Any]) -> str:
            run = RunPlan.from_xcom(plan)
            publish_job_outputs(
                self.s3,
                self.outputs,
                output_uri=run.layout.output_uri,
                run_id=run.run_id,
                input_uri=run.layout.input_uri,
                weights_uri=run.invocation().request.weights_uri,
            )
            return run.backend["fake"]["greeting"]

        computed = fake_compute(plan)
        return Segment(start=computed, end=computed, report_inputs={"said": computed})

    def report_section(self, plan: RunPlan, said: str = "", **_: Any) -> ComputeFacts:
        return ComputeFacts(
            key="fake",
            title="Fake compute",
            facts=(("Said", Fact(said, "id")),),
            summary={"said": said},
        )


@pytest.mark.slow
@pytest.mark.usefixtures("airflow_db")
@QUIET_TEST_CLIENT
def test_a_new_backend_is_one_module_and_one_registry_line(
    monkeypatch, pipeline_env, s3_server, job_outputs
):
    from airflow.dag_processing.dagbag import DagBag

    from fruits_features.compute.registry import BACKENDS

    monkeypatch.setitem(BACKENDS, "fake", FakeBackend(s3_server, job_outputs))  # the line
    monkeypatch.setenv("FRUITS_COMPUTE", "fake")
    monkeypatch.setenv("FRUITS_FAKE_GREETING", "bonjour")  # its settings are settings
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    dag = bag.dags["fruits_features"]
    assert "fake_compute" in dag.task_ids and "create_cluster" not in dag.task_ids

    run = dag.test(run_conf=JOB_CONF)

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    (folder,) = (Path(pipeline_env["FRUITS_RESULTS_DIR"]) / "mini").iterdir()
    summary = json.loads((folder / "report" / "report.json").read_text())
    assert summary["fake"] == {"said": "bonjour"}
    assert "Fake compute" in (folder / "report" / "report.html").read_text()
