"""Which clusters a run's sweeps may end: its own, never another deployment's (moto's EMR)."""

from __future__ import annotations

from fruits_features.compute.emr_clusters import terminate_run_clusters
from fruits_features.compute.emr_spec import DEPLOYMENT_TAG, PROJECT_TAG, RUN_TOKEN_TAG
from tests.airflow.conftest import moto_emr, start_moto_cluster

# Two deployments in one account and region, on the same schedule: the same run id.
RUN_ID = "scheduled__2026-12-07T01:00:00+00:00"


def _cluster(client, deployment: str, token: str) -> str:
    tags = {"project": PROJECT_TAG, DEPLOYMENT_TAG: deployment, RUN_TOKEN_TAG: token,
            "run_id": RUN_ID, "mode": "mini"}  # fmt: skip
    return start_moto_cluster(
        client, f"{PROJECT_TAG}-mini-scheduled__2026-12-07T01_00_00_00_00", tags
    )


def _state(client, cluster_id: str) -> str:
    return client.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]


def test_a_sweep_ends_its_runs_cluster_never_another_deployments_of_the_same_run_id(
    moto_server,
):
    client = moto_emr(moto_server)
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
