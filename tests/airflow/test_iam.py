"""The Airflow identity's policy, its conditions evaluated: what it lets a run do to the
clusters and roles of the account beyond its own."""

from __future__ import annotations

import pytest

from fruits_features.iam import render_policy
from fruits_features.settings import build_config
from tests.airflow.aws_calls import ACCOUNT, Request, allowed, pass_role

POLICY = render_policy("airflow", build_config({"deployment": "prod"}), ACCOUNT)
CLUSTER = f"arn:aws:elasticmapreduce:eu-west-1:{ACCOUNT}:cluster/j-OTHER"
OURS = {"project": "fruits-features", "deployment": "prod"}


def on_cluster(action: str, tags: dict[str, str], adding: dict[str, str] | None = None) -> Request:
    """``action`` on a cluster tagged ``tags``, the request carrying the tags ``adding``."""
    context = {f"elasticmapreduce:ResourceTag/{k}": v for k, v in tags.items()}
    context |= {f"aws:RequestTag/{k}": v for k, v in (adding or {}).items()}
    return Request(f"elasticmapreduce:{action}", CLUSTER, context)


def created_with(tags: dict[str, str]) -> Request:
    context = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    return Request("elasticmapreduce:RunJobFlow", "*", context)


@pytest.mark.parametrize(
    "request_",
    [
        # Adopting a cluster: adding the project's tags to someone else's (which would then
        # take steps, commands run as its role, and terminations), or to any.
        on_cluster("AddTags", {}, adding=OURS),
        on_cluster("AddTags", {"team": "vision"}, adding=OURS),
        on_cluster("AddTags", OURS, adding=OURS),
        on_cluster("RemoveTags", OURS),
        # Another deployment's clusters (staging, same project, same account).
        on_cluster("AddJobFlowSteps", {"project": "fruits-features", "deployment": "staging"}),
        on_cluster("TerminateJobFlows", {"project": "fruits-features", "deployment": "staging"}),
        on_cluster("AddJobFlowSteps", {"project": "fruits-features"}),
        on_cluster("TerminateJobFlows", {"team": "vision"}),
        created_with({"project": "fruits-features", "deployment": "staging"}),
        created_with({"project": "fruits-features"}),
        # The EMR roles handed to anything but EMR (a Lambda, an EC2 instance of one's own).
        pass_role("EMR_DefaultRole", "lambda.amazonaws.com"),
        pass_role("EMR_DefaultRole", "ec2.amazonaws.com"),
        pass_role("EMR_EC2_DefaultRole", "lambda.amazonaws.com"),
        pass_role("EMR_EC2_DefaultRole", "elasticmapreduce.amazonaws.com"),
    ],
    ids=repr,
)
def test_what_belongs_to_others_is_denied(request_):
    assert not allowed(request_, POLICY)


@pytest.mark.parametrize(
    "request_",
    [
        created_with({**OURS, "run_token": "0123456789abcdef", "run_id": "r", "mode": "mini"}),
        on_cluster("AddJobFlowSteps", OURS),
        on_cluster("TerminateJobFlows", OURS),
        on_cluster("DescribeCluster", OURS),
        pass_role("EMR_DefaultRole", "elasticmapreduce.amazonaws.com"),
        pass_role("EMR_EC2_DefaultRole", "ec2.amazonaws.com"),
    ],
    ids=repr,
)
def test_what_the_run_does_to_its_own_cluster_is_allowed(request_):
    assert allowed(request_, POLICY)
