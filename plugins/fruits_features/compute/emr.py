"""EMR compute backend: a transient cluster per run, one spark-submit step, always torn down.

create_cluster (setup) -> add_step -> watch_step -> terminate_cluster (teardown: runs whatever
failed). The cluster request and the step are built in the plan (``emr_spec``), so a bad
configuration fails ``check_inputs`` before any cluster exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator

from fruits_features.compute.base import Segment
from fruits_features.compute.emr_spec import cluster_spec, spark_sizing, spark_step
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
    ebs_volume_gb: int = setting(64, "gp3 volume per node", ge=8, le=4096)
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
        sizing = spark_sizing(settings.core_instance_type, settings.core_instance_count)
        layout = run.layout
        step_name = f"fruits-features {run.params.mode} {layout.run_key}"
        return {
            # Each key is an XCom of its own, read by one operator.
            "emr_cluster": cluster_spec(settings, layout, run.run_id, run.params.mode),
            "emr_steps": [spark_step(run.invocation(partitions=sizing.partitions), step_name)],
            "emr_watch": {
                "poll_seconds": config.core.step_poll_seconds,
                "timeout_seconds": config.core.step_timeout_seconds,
                "deferrable": settings.sensor_deferrable,
            },
        }

    def segment(self, plan: Any) -> Segment:
        from airflow.providers.amazon.aws.operators.emr import (
            EmrAddStepsOperator,
            EmrCreateJobFlowOperator,
            EmrTerminateJobFlowOperator,
        )

        from fruits_features.compute.emr_sensor import EmrStepWatchSensor

        # Every EMR operator talks to AWS as the run's plan says.
        aws = {"aws_conn_id": plan["aws_conn_id"], "region_name": plan["region"]}
        create_cluster = EmrCreateJobFlowOperator(
            task_id="create_cluster",
            job_flow_overrides=plan["emr_cluster"],
            emr_conn_id=None,
            **aws,
        )
        add_step = EmrAddStepsOperator(
            task_id="add_step",
            job_flow_id=create_cluster.output,
            steps=plan["emr_steps"],
            **aws,
        )
        watch_step = EmrStepWatchSensor(
            task_id="watch_step",
            job_flow_id=create_cluster.output,
            step_id="{{ ti.xcom_pull(task_ids='add_step')[0] }}",
            watch=plan["emr_watch"],
            mode="reschedule",
            **aws,
        )
        terminate_cluster = EmrTerminateJobFlowOperator(
            task_id="terminate_cluster",
            job_flow_id=create_cluster.output,
            **aws,
        )
        create_cluster >> add_step >> watch_step >> terminate_cluster
        terminate_cluster.as_teardown(setups=create_cluster)
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
