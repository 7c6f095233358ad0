"""Pure builders: run keys and S3 layout, EMR cluster spec and step, run plan, params, zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from fruits_features.checks import summarize_inputs
from fruits_features.compute.emr import EmrSettings
from fruits_features.compute.emr_spec import (
    cluster_spec,
    instance_vcpus,
    log_uri,
    spark_sizing,
    spark_step,
    step_log_uri,
)
from fruits_features.config import build_config
from fruits_features.job_invocation import JobRequest
from fruits_features.job_package import MissingArtifactError, artifact_files, build_job_zip
from fruits_features.modes import MODES
from fruits_features.params import RunParams, parse_run_params
from fruits_features.plan import build_plan, run_spec
from fruits_features.s3_layout import (
    image_class,
    listing_prefix,
    relative_key,
    run_key,
    run_layout,
    split_s3_uri,
)

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "manual__2026-01-02T03:04:05.678901+00:00"
KEY = "manual__2026-01-02T03_04_05.678901_00_00"
CONFIG = build_config({"bucket": "my-bucket"})
EMR = CONFIG.group(EmrSettings)


@pytest.mark.parametrize(
    ("run_id", "key"),
    [
        (RUN_ID, KEY),
        ("scheduled__2026-01-02T01:00:00+00:00", "scheduled__2026-01-02T01_00_00_00_00"),
        ("my run/with spaces", "my_run_with_spaces"),
        ("../../etc", "etc"),
        ("été", "t"),
    ],
)
def test_run_key_is_one_safe_segment(run_id, key):
    assert run_key(run_id) == key


def test_run_key_refuses_nothing_usable():
    with pytest.raises(ValueError):
        run_key("///")


def test_run_layout_keys_and_uris():
    layout = run_layout(CONFIG, "mini", KEY)
    assert layout.output_prefix == f"fruits-features/runs/mini/{KEY}/"
    assert layout.output_uri == f"s3://my-bucket/fruits-features/runs/mini/{KEY}"
    assert layout.pca_uri == f"s3://my-bucket/fruits-features/runs/mini/{KEY}/pca/parquet/"
    assert layout.input_uri == "s3://my-bucket/fruits-360"
    assert layout.report_prefix == f"fruits-features/runs/mini/{KEY}/report/"
    assert log_uri(layout.bucket, EMR) == "s3://my-bucket/fruits-features/emr-logs/"
    assert layout.artifact_uri("fruits_job.zip") == (
        f"s3://my-bucket/fruits-features/artifacts/{KEY}/fruits_job.zip"
    )


def test_s3_helpers():
    assert split_s3_uri("s3://b/a/b.txt") == ("b", "a/b.txt")
    assert split_s3_uri("s3://b") == ("b", "")
    with pytest.raises(ValueError):
        split_s3_uri("/local/path")
    assert step_log_uri("s3://b/logs/", "j-1", "s-2") == "s3://b/logs/j-1/steps/s-2/"
    assert step_log_uri("s3://b/logs", "j-1", "s-2") == "s3://b/logs/j-1/steps/s-2/"
    assert relative_key("p/x/y.csv", "p/").as_posix() == "x/y.csv"
    with pytest.raises(ValueError):
        relative_key("p/../y", "p/")
    with pytest.raises(ValueError):
        relative_key("q/y", "p/")


def test_mode_selection_of_keys():
    assert listing_prefix(CONFIG, "mini") == "fruits-360/Training/Apple"
    assert listing_prefix(CONFIG, "full") == "fruits-360/Training/"
    keys = [
        "fruits-360/Training/Apple Braeburn/1_100.jpg",
        "fruits-360/Training/Apple Braeburn/2_100.JPEG",
        "fruits-360/Training/Apple Red 1/3_100.png",
        "fruits-360/Training/Apple Red 1/notes.txt",
        "fruits-360/Training/Banana/1_100.jpg",
        "fruits-360/Training/stray.jpg",
        "fruits-360/Test/Apple Braeburn/1_100.jpg",
    ]
    assert image_class(keys[0], CONFIG) == "Apple Braeburn"
    assert image_class(keys[5], CONFIG) is None
    assert image_class(keys[6], CONFIG) is None
    apples = summarize_inputs(keys, CONFIG, "apples")
    assert apples.images == 3
    assert apples.classes == {"Apple Braeburn": 2, "Apple Red 1": 1}
    assert summarize_inputs(keys, CONFIG, "full").images == 4


@pytest.mark.parametrize(
    ("mode", "available", "limit", "planned"),
    [
        ("mini", 6400, None, 300),
        ("mini", 120, None, 120),
        ("mini", 6400, 24, 24),
        ("apples", 6400, None, 6400),
        ("full", 67692, 1000, 1000),
        ("full", 10, 1000, 10),
    ],
)
def test_planned_image_count(mode, available, limit, planned):
    assert MODES[mode].planned_images(available, limit) == planned


def test_cluster_spec_exact():
    layout = run_layout(CONFIG, "apples", KEY)
    python = "/opt/fruits-features/venv/bin/python"
    ebs = {
        "EbsBlockDeviceConfigs": [
            {"VolumeSpecification": {"VolumeType": "gp3", "SizeInGB": 64}, "VolumesPerInstance": 1}
        ],
        "EbsOptimized": True,
    }
    artifacts = f"s3://my-bucket/fruits-features/artifacts/{KEY}/"
    assert cluster_spec(EMR, layout, RUN_ID, "apples") == {
        "Name": f"fruits-features-apples-{KEY}",
        "ReleaseLabel": "emr-7.11.0",
        "Applications": [{"Name": "Spark"}, {"Name": "Hadoop"}],
        "LogUri": "s3://my-bucket/fruits-features/emr-logs/",
        "Instances": {
            "InstanceGroups": [
                {
                    "Name": "master",
                    "Market": "ON_DEMAND",
                    "InstanceRole": "MASTER",
                    "InstanceType": "m5.2xlarge",
                    "InstanceCount": 1,
                    "EbsConfiguration": ebs,
                },
                {
                    "Name": "core",
                    "Market": "ON_DEMAND",
                    "InstanceRole": "CORE",
                    "InstanceType": "m5.2xlarge",
                    "InstanceCount": 2,
                    "EbsConfiguration": ebs,
                },
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
            "TerminationProtected": False,
        },
        "BootstrapActions": [
            {
                "Name": "install-dependencies",
                "ScriptBootstrapAction": {
                    "Path": artifacts + "install_dependencies.sh",
                    "Args": [artifacts + "requirements-emr.txt"],
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
                    "spark.yarn.maxAppAttempts": "1",
                    # 2 x m5.2xlarge (8 vCPUs, 32 GiB): 2 executors of 4 cores per node.
                    "spark.dynamicAllocation.enabled": "false",
                    "spark.executor.instances": "4",
                    "spark.executor.cores": "4",
                    "spark.task.cpus": "1",
                    "spark.executor.memory": "5g",
                    "spark.executor.memoryOverhead": "6g",
                },
            },
        ],
        "JobFlowRole": "EMR_EC2_DefaultRole",
        "ServiceRole": "EMR_DefaultRole",
        "VisibleToAllUsers": True,
        "Tags": [
            {"Key": "project", "Value": "fruits-features"},
            {"Key": "run_id", "Value": RUN_ID},
            {"Key": "mode", "Value": "apples"},
        ],
        "AutoTerminationPolicy": {"IdleTimeout": 3600},
    }


def test_cluster_spec_follows_config():
    config = build_config(
        {
            "core_instance_type": "r5.xlarge",
            "core_instance_count": "4",
            "subnet_id": "subnet-0abc1234",
            "emr_python": "/opt/py/bin/python",
            "idle_timeout_seconds": "900",
        }
    )
    spec = cluster_spec(config.group(EmrSettings), run_layout(config, "full", KEY), RUN_ID, "full")
    core = spec["Instances"]["InstanceGroups"][1]
    assert (core["InstanceType"], core["InstanceCount"]) == ("r5.xlarge", 4)
    assert spec["Instances"]["Ec2SubnetId"] == "subnet-0abc1234"
    assert spec["Configurations"][0]["Configurations"][0]["Properties"] == {
        "PYSPARK_PYTHON": "/opt/py/bin/python"
    }
    assert spec["AutoTerminationPolicy"] == {"IdleTimeout": 900}
    default = cluster_spec(EMR, run_layout(CONFIG, "full", KEY), RUN_ID, "full")
    assert "Ec2SubnetId" not in default["Instances"]


def test_spark_step_exact():
    run = run_spec(CONFIG, RunParams("mini", 5, 24), RUN_ID, 24)
    artifacts = f"s3://my-bucket/fruits-features/artifacts/{KEY}/"
    invocation = run.invocation(partitions=spark_sizing("m5.2xlarge", 2).partitions)
    step = spark_step(invocation, f"fruits-features mini {KEY}")
    assert step == {
        "Name": f"fruits-features mini {KEY}",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": [
                "spark-submit",
                "--deploy-mode",
                "cluster",
                "--py-files",
                artifacts + "fruits_job.zip",
                artifacts + "process_fruits_data.py",
                "--input",
                "s3://my-bucket/fruits-360",
                "--output",
                f"s3://my-bucket/fruits-features/runs/mini/{KEY}",
                "--mode",
                "mini",
                "--pca-components",
                "5",
                "--weights",
                artifacts + "mobilenet_v2_1.0_224_no_top.weights.h5",
                "--run-id",
                RUN_ID,
                "--engine",
                "onnxruntime",
                "--limit",
                "24",
                "--partitions",
                "32",
            ],
        },
    }


@pytest.mark.parametrize(
    ("instance_type", "count", "executors", "cores", "heap", "overhead"),
    [
        ("m5.2xlarge", 2, 4, 4, 5, 6),  # the reference deployment
        ("m5.xlarge", 3, 3, 4, 5, 6),
        ("c5.4xlarge", 1, 4, 4, 2, 3),
        ("r5.large", 2, 2, 2, 5, 6),
    ],
)
def test_spark_sizing_fits_the_nodes(instance_type, count, executors, cores, heap, overhead):
    sizing = spark_sizing(instance_type, count)
    assert (sizing.executors, sizing.executor_cores) == (executors, cores)
    assert (sizing.heap_gib, sizing.overhead_gib) == (heap, overhead)
    # One task per core, never more cores asked than the core nodes have.
    assert sizing.executors * sizing.executor_cores == count * instance_vcpus(instance_type)
    assert sizing.partitions == 2 * count * instance_vcpus(instance_type)


def test_spark_sizing_refuses_unknown_sizes():
    with pytest.raises(ValueError, match=r"m5\.metal"):
        spark_sizing("m5.metal", 2)


def test_job_arguments_without_limit():
    request = JobRequest(
        input_uri="in",
        output_uri="out",
        weights_uri="w",
        mode="full",
        pca_components=50,
        run_id="r",
    )
    assert request.arguments() == [
        *["--input", "in", "--output", "out", "--mode", "full", "--pca-components", "50"],
        *["--weights", "w", "--run-id", "r", "--engine", "onnxruntime"],
    ]


def test_plan_is_json_and_complete():
    import json

    plan = build_plan(CONFIG, RunParams("mini", 5, 24), RUN_ID, 24)
    assert json.loads(json.dumps(plan)) == plan
    assert plan["run_key"] == KEY
    assert plan["output_prefix"] == f"fruits-features/runs/mini/{KEY}/"
    assert plan["results_dir"] == str(REPO / "results" / "mini" / KEY)
    args = plan["emr_steps"][0]["HadoopJarStep"]["Args"]
    assert args[-4:] == ["--limit", "24", "--partitions", "32"]
    assert plan["engine"] == "onnxruntime"
    assert plan["emr_watch"] == {"poll_seconds": 60, "timeout_seconds": 7200, "deferrable": True}
    assert "local" not in plan
    assert sorted(plan["artifacts"]) == sorted(
        [
            "process_fruits_data.py",
            "fruits_job.zip",
            "install_dependencies.sh",
            "requirements-emr.txt",
            "mobilenet_v2_1.0_224_no_top.weights.h5",
        ]
    )


def test_run_params_validation():
    assert parse_run_params({"mode": "mini", "pca_components": 5, "limit": None}) == RunParams(
        "mini", 5, None
    )
    for bad in (
        {"mode": "pears", "pca_components": 5, "limit": None},
        {"mode": "mini", "pca_components": 0, "limit": None},
        {"mode": "mini", "pca_components": True, "limit": None},
        {"mode": "mini", "pca_components": 5, "limit": 0},
    ):
        with pytest.raises(ValueError):
            parse_run_params(bad)
    assert parse_run_params(
        {"mode": "full", "pca_components": 5, "limit": None, "engine": "tensorflow"}
    ) == RunParams("full", 5, None, "tensorflow")
    with pytest.raises(ValueError, match="engine must be one of"):
        parse_run_params({"mode": "full", "pca_components": 5, "limit": None, "engine": "torch"})
    with pytest.raises(ValueError, match="mdoe"):
        parse_run_params({"mode": "full", "pca_components": 50, "limit": None}, {"mdoe": "mini"})


def test_job_zip_is_importable_and_reproducible(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = build_job_zip(REPO, tmp_path / "a")
    second = build_job_zip(REPO, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert "fruits_job/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_missing_job_files_are_named(tmp_path):
    with pytest.raises(MissingArtifactError, match=r"process_fruits_data\.py"):
        artifact_files(tmp_path, tmp_path)


def test_engine_choices_match_the_job():
    """The two sides share nothing at import time; this keeps their engine lists equal."""
    from fruits_features.engines import DEFAULT_ENGINE, ENGINES
    from fruits_job.engines import DEFAULT_ENGINE as JOB_DEFAULT
    from fruits_job.engines import ENGINES as JOB_ENGINES

    assert list(ENGINES) == list(JOB_ENGINES)
    assert DEFAULT_ENGINE == JOB_DEFAULT == build_config({}).runs.engine


def test_mode_tables_match_the_job():
    """The same for modes: names, the classes each reads and how many images it takes."""
    from fruits_job.modes import MODES as JOB_MODES

    assert list(MODES) == list(JOB_MODES)
    for name, mode in MODES.items():
        job = JOB_MODES[name]
        assert (mode.class_prefix, mode.max_images) == (job.class_prefix, job.max_images), name
