"""EMR compute backend: a transient cluster per run, one spark-submit step, always torn down.

create_cluster, add_step (setups) -> watch_step -> terminate_cluster (teardown: runs whatever
failed, waits until the cluster has ended) -> no_cluster_left (runs whatever happened: no
cluster tagged with the run may be left). The cluster request, its sizing and the step are
built in the plan (``emr_spec``), so a configuration that cannot work fails ``check_inputs``
before any cluster exists.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fruits_features.compute.base import Segment
from fruits_features.compute.emr_settings import EmrSettings
from fruits_features.compute.emr_spec import (
    STEP_GRACE_SECONDS,
    SizingError,
    cluster_spec,
    spark_sizing,
    spark_step,
    yarn_fit_problems,
)
from fruits_features.compute.facts import ComputeFacts
from fruits_features.config import PipelineConfig
from fruits_features.plan import RunPlan
from fruits_features.s3_layout import s3_uri


class EmrBackend:
    name = "emr"
    settings = EmrSettings
    remote_driver = True

    def plan_section(self, config: PipelineConfig, plan: RunPlan) -> dict[str, Any]:
        settings: EmrSettings = config.group(EmrSettings)
        core, master = settings.core_instance_type, settings.master_instance_type
        sizing = spark_sizing(core, settings.core_instance_count, master)
        problems = yarn_fit_problems(sizing, core, master)
        if problems:
            raise SizingError("the job does not fit the cluster: " + "; ".join(problems))
        layout, params = plan.layout, plan.params
        step_name = f"fruits-features {params.mode} {layout.run_key}"
        max_seconds = config.core.step_timeout_seconds + STEP_GRACE_SECONDS
        steps = [spark_step(plan.invocation(), step_name, sizing, max_seconds)]
        if plan.maintain:  # the feature store's maintenance, after the job, on its cluster
            name = f"fruits-features maintenance {layout.run_key}"
            steps.append(spark_step(plan.maintenance_invocation(), name, sizing, max_seconds))
        watch = {
            "poll_seconds": config.core.step_poll_seconds,
            "timeout_seconds": config.core.step_timeout_seconds,
            "deferrable": settings.sensor_deferrable,
            "log_wait_seconds": settings.step_log_wait_seconds,
        }
        overdue, marker = plan.deadline, s3_uri(layout.bucket, layout.overdue_key)
        return {
            # Each key is an XCom of its own, read by one operator (or the report).
            "emr_cluster": cluster_spec(
                settings,
                sizing,
                layout,
                plan.run_id,
                params.mode,
                params.engine,
                deployment=plan.deployment,
                run_token=plan.run_token,
            ),
            "emr_steps": steps,
            # The job's watch announces it overdue, once per run (a marker on S3 says so).
            "emr_watch": {**watch, "deadline": overdue and {**overdue, "marker": marker}},
            "emr_watch_maintenance": {**watch, "skip": None if plan.maintain else "not due"},
            "emr_prices": settings.hourly_prices,
        }

    def segment(self, plan: Any) -> Segment:
        from airflow.sdk import task

        from fruits_features.compute.emr_clusters import RETRYING
        from fruits_features.compute.emr_operators import (
            EmrAddRunStepsOperator,
            EmrCreateRunClusterOperator,
            EmrTerminateRunClusterOperator,
            ensure_no_cluster_left,
        )
        from fruits_features.compute.emr_sensor import EmrStepWatchSensor

        # Every EMR operator talks to AWS as the run's plan says; all calls but RunJobFlow
        # retry throttling and server errors (one throttled call must not fail a run).
        aws = {"aws_conn_id": plan["aws_conn_id"], "region_name": plan["region"]}
        create_cluster = EmrCreateRunClusterOperator(
            task_id="create_cluster",
            job_flow_overrides=plan["emr_cluster"],
            run_token=plan["run_token"],
            deployment=plan["deployment"],
            emr_conn_id=None,
            botocore_config=RETRYING,  # all but RunJobFlow (EmrRunJobFlowOnceHook)
            # RunJobFlow answers in seconds; a call that hangs is killed, and on_kill ends
            # whatever cluster it made.
            execution_timeout=timedelta(minutes=15),
            **aws,
        )
        add_step = EmrAddRunStepsOperator(
            task_id="add_step",
            job_flow_id=create_cluster.output,
            steps=plan["emr_steps"],
            botocore_config=RETRYING,
            **aws,
        )
        watch_step = EmrStepWatchSensor(
            task_id="watch_step",
            job_flow_id=create_cluster.output,
            step_id="{{ ti.xcom_pull(task_ids='add_step')[0] }}",
            watch=plan["emr_watch"],
            mode="reschedule",
            botocore_config=RETRYING,
            **aws,
        )
        # The feature store's maintenance, when due: the second step (skipped otherwise).
        watch_maintenance = EmrStepWatchSensor(
            task_id="watch_maintenance",
            job_flow_id=create_cluster.output,
            step_id="{{ (ti.xcom_pull(task_ids='add_step') + [''])[1] }}",
            watch=plan["emr_watch_maintenance"],
            mode="reschedule",
            botocore_config=RETRYING,
            **aws,
        )
        terminate_cluster = EmrTerminateRunClusterOperator(
            task_id="terminate_cluster",
            job_flow_id=create_cluster.output,
            waiter_delay=15,
            waiter_max_attempts=80,
            botocore_config=RETRYING,
            **aws,
        )
        no_cluster_left = task(task_id="no_cluster_left", trigger_rule="all_done")(
            ensure_no_cluster_left
        )(plan)
        create_cluster >> add_step >> watch_step >> watch_maintenance >> terminate_cluster
        terminate_cluster >> no_cluster_left
        # Both are setups: clearing a failed watch_step creates a new cluster and adds the
        # step to it, instead of watching the old step id on a cluster that is gone.
        terminate_cluster.as_teardown(setups=[create_cluster, add_step])
        # The report runs after the teardown: it gives the cluster's whole wall time and cost.
        return Segment(
            start=create_cluster,
            end=watch_step,
            done=terminate_cluster,
            report_inputs={"cluster_id": create_cluster.output},
        )

    def report_section(
        self, plan: RunPlan, cluster_id: str | None = None, **_: Any
    ) -> ComputeFacts | None:
        from airflow.providers.amazon.aws.hooks.emr import EmrHook

        from fruits_features.compute.emr_cost import EmrRunInfo, cost_section

        if not cluster_id:
            return None
        client = EmrHook(aws_conn_id=plan.aws_conn_id, region_name=plan.region).conn
        emr = EmrRunInfo.from_emr(
            client.describe_cluster(ClusterId=cluster_id)["Cluster"],
            client.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"],
        )
        return cost_section(emr, plan.backend["emr_prices"])


BACKEND = EmrBackend()
