"""The EMR requests the plan builds, held to botocore's service model (moto takes anything)."""

from __future__ import annotations

import pytest

from fruits_features.config import build_config
from fruits_features.params import RunParams
from fruits_features.plan import build_plan
from tests.airflow.aws_model import request_problems

RUN_ID = "scheduled__2026-01-02T01:00:00+00:00"


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
    plan = build_plan(build_config(settings), RunParams("full", 50, None, engine), RUN_ID, 67692)
    assert request_problems("emr", "RunJobFlow", plan["emr_cluster"]) == []
    steps = {"JobFlowId": "j-1ABCDEFGHIJKL", "Steps": plan["emr_steps"]}
    assert request_problems("emr", "AddJobFlowSteps", steps) == []


def test_the_check_catches_what_aws_no_longer_supports():
    # VisibleToAllUsers: "no longer supported" in botocore's model; moto takes it silently.
    plan = build_plan(build_config({}), RunParams("mini", 5, 24), RUN_ID, 24)
    problems = request_problems(
        "emr", "RunJobFlow", {**plan["emr_cluster"], "VisibleToAllUsers": True}
    )
    assert problems == ["VisibleToAllUsers: the model says it is no longer supported or deprecated"]
    broken = {**plan["emr_cluster"], "EbsRootVolumeSize": "thirty"}
    assert "EbsRootVolumeSize" in request_problems("emr", "RunJobFlow", broken)[0]
