"""EMR cluster request and Spark step: pure builders of boto3 ``run_job_flow`` / step requests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fruits_features.job_invocation import JobInvocation
from fruits_features.s3_layout import BOOTSTRAP_NAME, REQUIREMENTS_NAME, RunLayout

if TYPE_CHECKING:
    from fruits_features.compute.emr import EmrSettings

PROJECT_TAG = "fruits-features"

# Memory per vCPU of the instance families worth running this job on (c: compute, m: general,
# r: memory); sizes: large = 2 vCPUs, xlarge = 4, <N>xlarge = 4N.
_GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8}
# YARN offers about 70-75% of a node's memory to containers.
_YARN_SHARE = 0.7
EXECUTOR_CORES = 4


@dataclass(frozen=True)
class SparkSizing:
    """Executors of a cluster: one Python worker per core, one inference thread per worker."""

    executors: int
    executor_cores: int
    heap_gib: int
    overhead_gib: int

    @property
    def partitions(self) -> int:
        # Two tasks per core: a slow task does not leave the other cores idle at the end,
        # and the model is still built once per worker (it is cached across tasks).
        return 2 * self.executors * self.executor_cores

    def spark_defaults(self) -> dict[str, str]:
        return {
            "spark.dynamicAllocation.enabled": "false",
            "spark.executor.instances": str(self.executors),
            "spark.executor.cores": str(self.executor_cores),
            # The job gives each inference engine spark.task.cpus threads: 1 thread per
            # worker and one worker per core, so workers never fight for cores.
            "spark.task.cpus": "1",
            "spark.executor.memory": f"{self.heap_gib}g",
            # Python workers (decoding + inference) live outside the JVM heap.
            "spark.executor.memoryOverhead": f"{self.overhead_gib}g",
        }


def instance_vcpus(instance_type: str) -> int:
    """vCPUs of an EC2 instance type from its size (``m5.2xlarge`` → 8)."""
    size = instance_type.split(".", 1)[1]
    if size == "large":
        return 2
    if size == "xlarge":
        return 4
    if size.endswith("xlarge") and size[: -len("xlarge")].isdigit():
        return 4 * int(size[: -len("xlarge")])
    raise ValueError(f"cannot size Spark executors for instance type {instance_type!r}")


def spark_sizing(core_instance_type: str, core_instance_count: int) -> SparkSizing:
    """Executors for core nodes of this type (the master node runs no executor)."""
    vcpus = instance_vcpus(core_instance_type)
    cores = min(EXECUTOR_CORES, vcpus)
    per_node = vcpus // cores
    memory = vcpus * _GIB_PER_VCPU.get(core_instance_type[0], 4) * _YARN_SHARE / per_node
    heap = max(1, math.floor(memory / 2))
    return SparkSizing(
        executors=per_node * core_instance_count,
        executor_cores=cores,
        heap_gib=heap,
        overhead_gib=max(1, math.floor(memory - heap)),
    )


def log_uri(bucket: str, settings: EmrSettings) -> str:
    return f"s3://{bucket}/{settings.log_prefix}/"


def step_log_uri(log_uri: str, cluster_id: str, step_id: str) -> str:
    """Where EMR writes a step's logs: ``<LogUri><cluster id>/steps/<step id>/``."""
    base = log_uri if log_uri.endswith("/") else log_uri + "/"
    return f"{base}{cluster_id}/steps/{step_id}/"


def _instance_group(name: str, role: str, instance_type: str, count: int, ebs_gb: int) -> dict:
    return {
        "Name": name,
        "Market": "ON_DEMAND",
        "InstanceRole": role,
        "InstanceType": instance_type,
        "InstanceCount": count,
        "EbsConfiguration": {
            "EbsBlockDeviceConfigs": [
                {
                    "VolumeSpecification": {"VolumeType": "gp3", "SizeInGB": ebs_gb},
                    "VolumesPerInstance": 1,
                }
            ],
            "EbsOptimized": True,
        },
    }


def cluster_spec(
    settings: EmrSettings, layout: RunLayout, run_id: str, mode: str
) -> dict[str, Any]:
    """``run_job_flow`` request of a transient cluster for one run."""
    python = settings.emr_python
    sizing = spark_sizing(settings.core_instance_type, settings.core_instance_count)
    instances: dict[str, Any] = {
        "InstanceGroups": [
            _instance_group(
                "master", "MASTER", settings.master_instance_type, 1, settings.ebs_volume_gb
            ),
            _instance_group(
                "core",
                "CORE",
                settings.core_instance_type,
                settings.core_instance_count,
                settings.ebs_volume_gb,
            ),
        ],
        # The cluster outlives its step so the DAG's teardown (not EMR) ends it; the idle
        # timeout below is the safety net if Airflow never gets to run the teardown.
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    }
    if settings.subnet_id:
        instances["Ec2SubnetId"] = settings.subnet_id
    return {
        "Name": f"{PROJECT_TAG}-{mode}-{layout.run_key}"[:256],
        "ReleaseLabel": settings.emr_release,
        "Applications": [{"Name": "Spark"}, {"Name": "Hadoop"}],
        "LogUri": log_uri(layout.bucket, settings),
        "Instances": instances,
        "BootstrapActions": [
            {
                "Name": "install-dependencies",
                "ScriptBootstrapAction": {
                    "Path": layout.artifact_uri(BOOTSTRAP_NAME),
                    "Args": [layout.artifact_uri(REQUIREMENTS_NAME)],
                },
            }
        ],
        "Configurations": [
            {
                "Classification": "spark-env",
                "Configurations": [
                    {"Classification": "export", "Properties": {"PYSPARK_PYTHON": python}}
                ],
                "Properties": {},
            },
            {
                "Classification": "spark-defaults",
                "Properties": {
                    "spark.pyspark.python": python,
                    "spark.pyspark.driver.python": python,
                    # A second attempt would find the first attempt's partial output and
                    # fail with "output already present", hiding the real error.
                    "spark.yarn.maxAppAttempts": "1",
                    **sizing.spark_defaults(),
                },
            },
        ],
        "JobFlowRole": settings.emr_instance_profile,
        "ServiceRole": settings.emr_service_role,
        "VisibleToAllUsers": True,
        "Tags": [
            {"Key": "project", "Value": PROJECT_TAG},
            {"Key": "run_id", "Value": run_id[:256]},
            {"Key": "mode", "Value": mode},
        ],
        "AutoTerminationPolicy": {"IdleTimeout": settings.idle_timeout_seconds},
    }


def spark_step(invocation: JobInvocation, name: str) -> dict[str, Any]:
    """The one ``spark-submit`` step of a run (cluster deploy mode, job package via --py-files)."""
    return {
        "Name": name[:256],
        # CONTINUE: the DAG, not EMR, decides what happens after a failure (teardown terminates).
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": invocation.spark_submit(options=["--deploy-mode", "cluster"]),
        },
    }
