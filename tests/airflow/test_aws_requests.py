"""The EMR requests the plan builds, held to botocore's service model (moto takes anything)."""

from __future__ import annotations

import pytest

from fruits_features.compute.registry import compute_backend
from fruits_features.plan import build_plan
from fruits_features.run_params import RunParams
from fruits_features.settings import build_config
from tests.airflow.aws_model import request_problems

RUN_ID = "scheduled__2026-01-02T01:00:00+00:00"


def emr_plan(settings: dict, params: RunParams, planned: int) -> dict:
    """The EMR backend's section of the run's plan (its XCom keys)."""
    config = build_config(settings)
    return compute_backend("emr").plan_section(config, build_plan(config, params, RUN_ID, planned))


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {
            "core_instance_type": "r5.2xlarge",
            "core_instance_count": "4",
            "subnet_id": "subnet-0abc1234",
        },
        {"master_instance_type": "m5.4xlarge", "core_instance_type": "c5.4xlarge"},
    ],
    ids=["reference", "memory-optimised", "compute-optimised"],
)
@pytest.mark.parametrize("engine", ["onnxruntime", "tensorflow", "openvino"])
def test_cluster_and_step_requests_are_valid_for_aws(settings, engine):
    plan = emr_plan(settings, RunParams("full", 50, None, engine), 67692)
    assert request_problems("emr", "RunJobFlow", plan["emr_cluster"]) == []
    steps = {"JobFlowId": "j-1ABCDEFGHIJKL", "Steps": plan["emr_steps"]}
    assert request_problems("emr", "AddJobFlowSteps", steps) == []


def test_the_check_catches_what_aws_no_longer_supports():
    # VisibleToAllUsers: "no longer supported" in botocore's model; moto takes it silently.
    plan = emr_plan({}, RunParams("mini", 5, 24), 24)
    problems = request_problems(
        "emr", "RunJobFlow", {**plan["emr_cluster"], "VisibleToAllUsers": True}
    )
    assert problems == ["VisibleToAllUsers: the model says it is no longer supported or deprecated"]
    broken = {**plan["emr_cluster"], "EbsRootVolumeSize": "thirty"}
    assert "EbsRootVolumeSize" in request_problems("emr", "RunJobFlow", broken)[0]
