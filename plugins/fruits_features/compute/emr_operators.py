"""The EMR operators of a run: create the cluster without leaking it, end it and wait.

Airflow's own operators do the calls; these subclasses add what a transient, per-run cluster
needs: no blind retry of RunJobFlow, cleanup by tag when creation fails half-way, and a
teardown that waits until the cluster has ended (so the report's cost has an end time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.emr import EmrHook
from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator,
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)

from fruits_features import lineage
from fruits_features.compute.emr_clusters import NO_RETRY, RETRYING, terminate_run_clusters

if TYPE_CHECKING:
    from airflow.sdk import Context


def retrying_client(aws_conn_id: str | None, region_name: str | None) -> Any:
    """An EMR client that retries throttling and server errors (never used for RunJobFlow)."""
    return EmrHook(aws_conn_id=aws_conn_id, region_name=region_name, config=RETRYING).conn


class EmrRunJobFlowOnceHook(EmrHook):
    """EmrHook that sends RunJobFlow once, whatever its client's retries: the call is not
    idempotent, and botocore's retry of a request that failed after EMR accepted it creates
    another cluster. Every other call (the describe right after it, the waiter) retries as
    the operator's ``botocore_config`` says: one throttled call must not end a new cluster."""

    def create_job_flow(self, job_flow_overrides: dict[str, Any]) -> dict[str, Any]:
        once = EmrHook(
            emr_conn_id=self.emr_conn_id,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=NO_RETRY,
        )
        return once.create_job_flow(job_flow_overrides)


class EmrCreateRunClusterOperator(EmrCreateJobFlowOperator):
    """Create the run's cluster once; if anything fails after the request, end what it made.

    :param run_token: the run's token, a tag of its cluster (templated), and
    :param deployment: the deployment's name, another: to find the cluster when its id never
        came back (an error answer to a request EMR carried out, a denied follow-up call).
    """

    aws_hook_class = EmrRunJobFlowOnceHook
    template_fields: Sequence[str] = (
        *EmrCreateJobFlowOperator.template_fields,
        "run_token",
        "deployment",
    )

    def __init__(self, *, run_token: str, deployment: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_token = run_token
        self.deployment = deployment

    def execute(self, context: Context) -> str | None:
        try:
            return super().execute(context)
        except Exception:
            self._end_run_clusters()
            raise

    def on_kill(self) -> None:
        # Airflow's kill (SIGTERM to the task): the id may not be known yet.
        self._end_run_clusters()

    def _end_run_clusters(self) -> None:
        try:
            ended = terminate_run_clusters(
                retrying_client(self.aws_conn_id, self.region_name),
                self.run_token,
                self.deployment,
            )
        except Exception:
            # The run's final check (no_cluster_left) looks again and fails the run if it can't.
            self.log.exception("Could not look up the clusters of run token %s", self.run_token)
            return
        self.log.warning(
            "Creating the cluster failed; terminated the run's cluster(s): %s",
            ", ".join(ended) or "none found",
        )


class EmrAddRunStepsOperator(EmrAddStepsOperator):
    """Add the run's steps; with lineage on (the plan gave the steps the listener), each
    names this task's OpenLineage run as its parent.

    The provider's own injection only edits steps whose command starts with spark-submit;
    the run's start with ``timeout`` (emr_spec.step_command)."""

    def __init__(self, **kwargs: Any) -> None:
        # Steps without the listener are left as they are: lineage off changes nothing.
        super().__init__(openlineage_inject_parent_job_info=True, **kwargs)

    def _inject_openlineage_parent_job_information(
        self, steps: list[dict], context: Context
    ) -> list[dict]:
        if not any(lineage.is_step_on(step) for step in steps):
            return steps
        parent = lineage.parent_conf(context)
        return [lineage.step_with_parent(step, parent) for step in steps]


class EmrTerminateRunClusterOperator(EmrTerminateJobFlowOperator):
    """Terminate the run's cluster and wait until EMR says it has ended."""

    def execute(self, context: Context) -> None:
        super().execute(context)
        if self.deferrable:
            return
        self.log.info("Waiting for cluster %s to end", self.job_flow_id)
        self.hook.get_waiter("cluster_terminated").wait(
            ClusterId=self.job_flow_id,
            WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
        )
        self.log.info("Cluster %s terminated", self.job_flow_id)


def ensure_no_cluster_left(plan_xcom: dict[str, Any] | None) -> None:
    """The run's last word on cost: no cluster tagged with it may still be running.

    Runs whatever happened before (create failed, the task was killed, the teardown was
    skipped): it terminates what it finds and fails the run, loudly, if it found any or
    cannot look. Without a plan (check_inputs failed or skipped the run) nothing can have
    started, and it is skipped.
    """
    import logging

    from airflow.sdk.exceptions import AirflowSkipException

    from fruits_features.plan import RunPlan

    log = logging.getLogger(__name__)
    if plan_xcom is None:
        raise AirflowSkipException("check_inputs made no plan: no cluster was started")
    plan = RunPlan.from_xcom(plan_xcom)
    client = retrying_client(plan.aws_conn_id, plan.region)
    try:
        left = terminate_run_clusters(client, plan.run_token, plan.deployment)
    except Exception as error:
        raise RuntimeError(
            f"cannot check that no EMR cluster of run {plan.run_id} is left running "
            f"({error}); look for clusters tagged run_token={plan.run_token} and terminate them"
        ) from error
    if left:
        raise RuntimeError(
            f"cluster(s) {', '.join(left)} of run {plan.run_id} were still running after "
            "the run: terminated now"
        )
    log.info("No cluster of run %s is left running", plan.run_id)
