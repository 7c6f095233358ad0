"""Which clusters a run's sweeps may end: its own, never another deployment's (moto's EMR)."""

from __future__ import annotations

import boto3

from fruits_features.compute.emr_clusters import terminate_run_clusters
from fruits_features.compute.emr_spec import DEPLOYMENT_TAG, PROJECT_TAG, RUN_TOKEN_TAG

# Two deployments in one account and region, on the same schedule: the same run id.
RUN_ID = "scheduled__2026-12-07T01:00:00+00:00"


def _client(moto_server: str):
    return boto3.client(
        "emr",
        region_name="eu-west-1",
        endpoint_url=moto_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _cluster(client, deployment: str, token: str) -> str:
    tags = {"project": PROJECT_TAG, DEPLOYMENT_TAG: deployment, RUN_TOKEN_TAG: token,
            "run_id": RUN_ID, "mode": "mini"}  # fmt: skip
    return client.run_job_flow(
        Name=f"{PROJECT_TAG}-mini-scheduled__2026-12-07T01_00_00_00_00",
        ReleaseLabel="emr-7.11.0",
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "InstanceCount": 1,
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )["JobFlowId"]


def _state(client, cluster_id: str) -> str:
    return client.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]


def test_a_sweep_ends_its_runs_cluster_never_another_deployments_of_the_same_run_id(
    moto_server,
):
    client = _client(moto_server)
    staging = _cluster(client, "staging", "a1b2c3d4e5f60708")
    prod = _cluster(client, "prod", "0f1e2d3c4b5a6978")
    # Same deployment name (a copy of a deployment), same run id: the token still tells.
    twin = _cluster(client, "staging", "99aa88bb77cc66dd")

    assert terminate_run_clusters(client, "a1b2c3d4e5f60708", "staging") == [staging]

    assert _state(client, staging) in ("TERMINATING", "TERMINATED")
    assert _state(client, prod) not in ("TERMINATING", "TERMINATED")
    assert _state(client, twin) not in ("TERMINATING", "TERMINATED")
    # A plan without a token (made by an older version) sweeps nothing rather than guess.
    assert terminate_run_clusters(client, "", "prod") == []
    for cluster_id in (prod, twin):
        client.terminate_job_flows(JobFlowIds=[cluster_id])
