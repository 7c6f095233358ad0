"""EMR cluster request and Spark step: pure builders of boto3 ``run_job_flow`` / step requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fruits_features.compute.emr_settings import EmrSettings
from fruits_features.job_invocation import JobInvocation
from fruits_features.s3_layout import (
    BOOTSTRAP_NAME,
    DRIVER_REQUIREMENTS_NAME,
    RunLayout,
    worker_requirements_name,
)

PROJECT_TAG = "fruits-features"
RUN_ID_TAG = "run_id"
# What makes a cluster this run's: run ids repeat across deployments (two deployments on
# one schedule both run ``scheduled__<time>``); the token check_inputs made does not.
RUN_TOKEN_TAG = "run_token"
DEPLOYMENT_TAG = "deployment"
EXECUTOR_CORES = 4


@dataclass(frozen=True)
class NodeType:
    vcpus: int
    memory_gib: int
    # EMR's default yarn.nodemanager.resource.memory-mb, also its largest container
    # (yarn.scheduler.maximum-allocation-mb), from the EMR release guide's task configuration.
    yarn_memory_mb: int


NODE_TYPES: dict[str, NodeType] = {
    "m5.xlarge": NodeType(4, 16, 12288),
    "m5.2xlarge": NodeType(8, 32, 24576),
    "m5.4xlarge": NodeType(16, 64, 57344),
    "r5.2xlarge": NodeType(8, 64, 57344),
    "c5.4xlarge": NodeType(16, 32, 24576),
}
# The YARN ApplicationMaster of a client-mode application: spark.yarn.am.memory (512 MiB)
# plus its overhead (384 MiB). YARN may place it on any core node, so every node keeps room.
AM_MEMORY_MB = 512 + 384
# What the master keeps for EMR's own daemons (YARN ResourceManager, HDFS NameNode, Spark
# history server...) and for the driver's Python process (it exports the model with
# TensorFlow: ~3 GiB measured locally).
MASTER_RESERVED_GIB = 8
DRIVER_PYTHON_GIB = 3


class SizingError(ValueError):
    """The instance types cannot hold the job's containers."""


def node_type(instance_type: str) -> NodeType:
    if instance_type not in NODE_TYPES:
        raise SizingError(
            f"no YARN sizing known for instance type {instance_type!r}; "
            f"supported: {', '.join(NODE_TYPES)}"
        )
    return NODE_TYPES[instance_type]


def _floor_mb(value: float, step: int = 512) -> int:
    return int(value // step * step)


@dataclass(frozen=True)
class SparkSizing:
    """Executors on the core nodes (one Python worker and one inference thread per core) and
    the driver on the master (client deploy mode)."""

    nodes: int
    executors_per_node: int
    executor_cores: int
    heap_mb: int
    overhead_mb: int
    driver_memory_mb: int

    @property
    def executors(self) -> int:
        return self.nodes * self.executors_per_node

    @property
    def task_slots(self) -> int:
        return self.executors * self.executor_cores

    def spark_defaults(self) -> dict[str, str]:
        return {
            "spark.dynamicAllocation.enabled": "false",
            "spark.executor.instances": str(self.executors),
            "spark.executor.cores": str(self.executor_cores),
            # The job sizes its feature tasks from it (a multiple of the slots): right from
            # the start, not from the executors registered when the job asks.
            "spark.default.parallelism": str(self.task_slots),
            # The job gives each inference engine spark.task.cpus threads: 1 thread per
            # worker and one worker per core, so workers never fight for cores.
            "spark.task.cpus": "1",
            "spark.executor.memory": f"{self.heap_mb}m",
            # Python workers (decoding + inference) live outside the JVM heap.
            "spark.executor.memoryOverhead": f"{self.overhead_mb}m",
        }


def spark_sizing(
    core_instance_type: str, core_instance_count: int, master_instance_type: str = "m5.2xlarge"
) -> SparkSizing:
    """Executors that fill the core nodes' YARN memory, and the driver's heap on the master."""
    node = node_type(core_instance_type)
    cores = min(EXECUTOR_CORES, node.vcpus)
    per_node = node.vcpus // cores
    budget = (node.yarn_memory_mb - AM_MEMORY_MB) // per_node
    heap = _floor_mb(budget * 0.45)
    master = node_type(master_instance_type)
    return SparkSizing(
        nodes=core_instance_count,
        executors_per_node=per_node,
        executor_cores=cores,
        heap_mb=heap,
        overhead_mb=_floor_mb(budget - heap),
        driver_memory_mb=min(16, master.memory_gib // 4) * 1024,
    )


def yarn_fit_problems(
    sizing: SparkSizing, core_instance_type: str, master_instance_type: str
) -> list[str]:
    """What does not fit: each container in YARN's largest, each node's containers in its
    YARN memory and vcores, the driver and its Python in the master's memory."""
    node, master = node_type(core_instance_type), node_type(master_instance_type)
    container = sizing.heap_mb + sizing.overhead_mb
    problems = []
    if container > node.yarn_memory_mb:
        problems.append(
            f"an executor container of {container} MB exceeds YARN's largest on "
            f"{core_instance_type} ({node.yarn_memory_mb} MB)"
        )
    per_node = sizing.executors_per_node * container + AM_MEMORY_MB
    if per_node > node.yarn_memory_mb:
        problems.append(
            f"{sizing.executors_per_node} executors of {container} MB and the application "
            f"master ({AM_MEMORY_MB} MB) need {per_node} MB per {core_instance_type}, "
            f"YARN offers {node.yarn_memory_mb} MB"
        )
    if sizing.executors_per_node * sizing.executor_cores > node.vcpus:
        problems.append(
            f"{sizing.executors_per_node} executors of {sizing.executor_cores} cores exceed "
            f"the {node.vcpus} vCPUs of {core_instance_type}"
        )
    driver_gib = sizing.driver_memory_mb / 1024 * 1.1 + DRIVER_PYTHON_GIB
    if driver_gib > master.memory_gib - MASTER_RESERVED_GIB:
        problems.append(
            f"the driver ({driver_gib:.1f} GiB with its Python) does not fit on a "
            f"{master_instance_type} master ({master.memory_gib} GiB, "
            f"{MASTER_RESERVED_GIB} GiB kept for EMR's daemons)"
        )
    return problems


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
    settings: EmrSettings,
    sizing: SparkSizing,
    layout: RunLayout,
    run_id: str,
    mode: str,
    engine: str,
    *,
    deployment: str,
    run_token: str,
) -> dict[str, Any]:
    """``run_job_flow`` request of a transient cluster for one run."""
    python = settings.emr_python
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
        # The venv (~2 GB on the master, TensorFlow included) lives on the root volume.
        "EbsRootVolumeSize": settings.ebs_root_volume_gb,
        "Instances": instances,
        "BootstrapActions": [
            {
                "Name": "install-dependencies",
                "ScriptBootstrapAction": {
                    "Path": layout.artifact_uri(BOOTSTRAP_NAME),
                    # The master runs the driver; core nodes run only the engine's workers.
                    "Args": [
                        layout.artifact_uri(DRIVER_REQUIREMENTS_NAME),
                        layout.artifact_uri(worker_requirements_name(engine)),
                    ],
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
            # EMR's own Delta Lake (3.3.2-amzn-0 on emr-7.11.0) for the feature store:
            # nothing is downloaded at step time.
            {"Classification": "delta-defaults", "Properties": {"delta.enabled": "true"}},
        ],
        "JobFlowRole": settings.emr_instance_profile,
        "ServiceRole": settings.emr_service_role,
        # Found by its run token when its id is unknown (compute/emr_clusters.py); the IAM
        # policy only lets the DAG act on clusters tagged with the project and deployment.
        "Tags": [
            {"Key": "project", "Value": PROJECT_TAG},
            {"Key": DEPLOYMENT_TAG, "Value": deployment},
            {"Key": RUN_TOKEN_TAG, "Value": run_token},
            {"Key": RUN_ID_TAG, "Value": run_id[:256]},
            {"Key": "mode", "Value": mode},
        ],
        "AutoTerminationPolicy": {"IdleTimeout": settings.idle_timeout_seconds},
    }


# A step outlives the sensor watching it by this much: normally the sensor's timeout fails
# the run and the teardown ends the cluster first; without Airflow, the step still ends.
STEP_GRACE_SECONDS = 300


def step_command(args: list[str], max_seconds: int) -> list[str]:
    """``args`` run with a maximum run time: SIGTERM after ``max_seconds`` (the step
    FAILED, exit 124), SIGKILL a minute later. With every step bounded and the cluster's
    idle timeout, a cluster whose teardown never runs (an Airflow outage, a deleted run)
    still ends: its life is at most the bootstrap, each step's maximum and the idle timeout."""
    return ["timeout", "--kill-after=60", str(max_seconds), *args]


def spark_step(
    invocation: JobInvocation, name: str, sizing: SparkSizing, max_seconds: int
) -> dict[str, Any]:
    """The one ``spark-submit`` step of a run, the driver on the master (client deploy mode).

    Client mode: the master (idle otherwise, with the full venv) holds the driver, whose
    model export needs TensorFlow and a few GiB; in cluster mode that driver container would
    have to fit next to the executors, which fill the core nodes' YARN memory. And the job's
    own error line then ends the step's stderr, where the sensor's message points.
    """
    options = ["--deploy-mode", "client", "--driver-memory", f"{sizing.driver_memory_mb}m"]
    return {
        "Name": name[:256],
        # CONTINUE: the DAG, not EMR, decides what happens after a failure (teardown terminates).
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": step_command(invocation.spark_submit(options=options), max_seconds),
        },
    }
