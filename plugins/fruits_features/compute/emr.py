"""EMR compute backend: a transient cluster per run, one spark-submit step, always torn down.

create_cluster, add_step (setups) -> watch_step -> terminate_cluster (teardown: runs whatever
failed, waits until the cluster has ended) -> no_cluster_left (runs whatever happened: no
cluster tagged with the run may be left). The cluster request, its sizing and the step are
built in the plan (``emr_spec``), so a configuration that cannot work fails ``check_inputs``
before any cluster exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator

from fruits_features.compute.base import Segment
from fruits_features.compute.emr_spec import (
    SizingError,
    cluster_spec,
    spark_sizing,
    spark_step,
    yarn_fit_problems,
)
from fruits_features.config import PipelineConfig, Prefix, SettingsGroup, matching, setting

InstanceType = Annotated[
    str, matching(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "an EC2 instance type such as 'm5.2xlarge'")
]
IamName = Annotated[str, matching(r"[A-Za-z0-9_+=,.@/-]{1,128}", "an IAM role or profile name")]


def _prices(text: str) -> str:
    if not text:
        return ""
    try:
        prices = json.loads(text)
    except ValueError:
        prices = None
    if not isinstance(prices, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in prices.values()
    ):
        raise ValueError('expected a JSON object such as {"m5.2xlarge": 0.524}')
    return json.dumps(prices, sort_keys=True)


class EmrSettings(SettingsGroup):
    title: ClassVar[str] = "EMR compute (`FRUITS_COMPUTE=emr`)"

    log_prefix: Prefix = setting("fruits-features/emr-logs", "EMR `LogUri`")
    emr_release: Annotated[
        str, matching(r"emr-\d+\.\d+\.\d+", "an EMR release label such as 'emr-7.11.0'")
    ] = setting("emr-7.11.0", "EMR release (Spark 3.5)")
    master_instance_type: InstanceType = setting("m5.2xlarge", "master node type")
    core_instance_type: InstanceType = setting("m5.2xlarge", "core node type")
    core_instance_count: int = setting(2, "core nodes", ge=1, le=100)
    ebs_volume_gb: int = setting(
        64, "gp3 data volume per node (YARN, HDFS, shuffle)", ge=8, le=4096
    )
    ebs_root_volume_gb: int = setting(
        30, "root volume per node (the OS and the job's venv, ~2 GB on the master)", ge=15, le=100
    )
    emr_service_role: IamName = setting("EMR_DefaultRole", "EMR service role")
    emr_instance_profile: IamName = setting("EMR_EC2_DefaultRole", "EC2 instance profile")
    # The interpreter of the venv that bootstrap/install_dependencies.sh creates on every node.
    emr_python: Annotated[str, matching(r"/\S+", "an absolute path to a python interpreter")] = (
        setting(
            "/opt/fruits-features/venv/bin/python",
            "Python the bootstrap installs, used by Spark",
        )
    )
    subnet_id: Annotated[
        str, matching(r"(subnet-[0-9a-f]{8,17})?", "a subnet id 'subnet-…' or empty")
    ] = setting("", "subnet of the cluster (empty: the default VPC)")
    idle_timeout_seconds: int = setting(
        3600,
        "EMR auto-termination when idle, a safety net behind the teardown",
        ge=60,
        le=7 * 24 * 3600,
    )
    sensor_deferrable: bool = setting(True, "wait for the step in the triggerer")
    hourly_prices_usd: Annotated[str, AfterValidator(_prices)] = setting(
        "",
        'JSON `{"m5.2xlarge": 0.524}`: EC2 + EMR price per hour, for the report\'s cost '
        "(empty: a built-in eu-west-1 table)",
    )

    @property
    def hourly_prices(self) -> dict[str, float] | None:
        """Configured prices, or None for the built-in table."""
        return json.loads(self.hourly_prices_usd) if self.hourly_prices_usd else None


class EmrBackend:
    name = "emr"
    settings = EmrSettings

    def plan_section(self, config: PipelineConfig, run: Any) -> dict[str, Any]:
        settings: EmrSettings = config.group(EmrSettings)
        core, master = settings.core_instance_type, settings.master_instance_type
        sizing = spark_sizing(core, settings.core_instance_count, master)
        problems = yarn_fit_problems(sizing, core, master)
        if problems:
            raise SizingError("the job does not fit the cluster: " + "; ".join(problems))
        layout, params = run.layout, run.params
        step_name = f"fruits-features {params.mode} {layout.run_key}"
        invocation = run.invocation()
        return {
            # Each key is an XCom of its own, read by one operator.
            "emr_cluster": cluster_spec(
                settings, sizing, layout, run.run_id, params.mode, params.engine
            ),
            "emr_steps": [spark_step(invocation, step_name, sizing)],
            "emr_watch": {
                "poll_seconds": config.core.step_poll_seconds,
                "timeout_seconds": config.core.step_timeout_seconds,
                "deferrable": settings.sensor_deferrable,
            },
        }

    def segment(self, plan: Any) -> Segment:
        from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator
        from airflow.sdk import task

        from fruits_features.compute.emr_clusters import NO_RETRY, RETRYING
        from fruits_features.compute.emr_operators import (
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
            run_id=plan["run_id"],
            emr_conn_id=None,
            botocore_config=NO_RETRY,
            # RunJobFlow answers in seconds; a call that hangs is killed, and on_kill ends
            # whatever cluster it made.
            execution_timeout=timedelta(minutes=15),
            **aws,
        )
        add_step = EmrAddStepsOperator(
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
        create_cluster >> add_step >> watch_step >> terminate_cluster >> no_cluster_left
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

    def report_section(self, plan: Mapping[str, Any], cluster_id: str | None = None, **_: Any):
        from airflow.providers.amazon.aws.hooks.emr import EmrHook

        from fruits_features.compute.emr_cost import EmrRunInfo, cost_section
        from fruits_features.config import config_from_snapshot

        if not cluster_id:
            return None
        settings: EmrSettings = config_from_snapshot(plan["config"]).group(EmrSettings)
        client = EmrHook(aws_conn_id=plan["aws_conn_id"], region_name=plan["region"]).conn
        emr = EmrRunInfo.from_emr(
            client.describe_cluster(ClusterId=cluster_id)["Cluster"],
            client.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"],
        )
        return cost_section(emr, settings.hourly_prices)


BACKEND = EmrBackend()
