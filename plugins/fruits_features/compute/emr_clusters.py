"""Finding and ending a run's EMR clusters by their tags, whatever the DAG knows of them.

Every cluster a run creates carries the tags ``project`` and ``run_id``. When creating one
fails after EMR accepted the request (an error answer to a request that did create a cluster,
a denied follow-up call, a task killed mid-call), the DAG does not know the cluster's id;
these functions find it from its tags and terminate it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fruits_features.compute.emr_spec import DEPLOYMENT_TAG, PROJECT_TAG, RUN_TOKEN_TAG

log = logging.getLogger(__name__)

# States in which a cluster costs money and has not been asked to end yet.
ACTIVE_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
# Retries for every call but RunJobFlow: throttling and server errors are retried with
# backoff; "standard" mode also retries what "legacy" does not (e.g. connection resets).
RETRYING = {"retries": {"mode": "standard", "max_attempts": 10}}
# RunJobFlow is not idempotent: a retried request after an error answer can create a second
# cluster. It is sent once; a failure is cleaned up by tag instead.
NO_RETRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}


def _active_clusters(client: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator("list_clusters").paginate(ClusterStates=list(ACTIVE_STATES)):
        yield from page.get("Clusters", [])


def run_clusters(
    client: Any, run_token: str, deployment: str, name_prefix: str = PROJECT_TAG
) -> list[str]:
    """Ids of the active clusters of this run: the project's, this deployment's, with the
    run's token (never another deployment's run of the same id)."""
    wanted = {"project": PROJECT_TAG, DEPLOYMENT_TAG: deployment, RUN_TOKEN_TAG: run_token}
    found = []
    for summary in _active_clusters(client):
        # The name says which project a cluster belongs to; the tags which run.
        if not summary.get("Name", "").startswith(name_prefix):
            continue
        cluster = client.describe_cluster(ClusterId=summary["Id"])["Cluster"]
        tags = {tag["Key"]: tag["Value"] for tag in cluster.get("Tags", [])}
        if run_token and all(tags.get(key) == value for key, value in wanted.items()):
            found.append(summary["Id"])
    return found


def terminate_run_clusters(
    client: Any, run_token: str, deployment: str, name_prefix: str = PROJECT_TAG
) -> list[str]:
    """Terminate every active cluster of this run; returns their ids."""
    ids = run_clusters(client, run_token, deployment, name_prefix)
    if ids:
        log.warning("Terminating cluster(s) %s of run token %s", ", ".join(ids), run_token)
        client.terminate_job_flows(JobFlowIds=ids)
    return ids
