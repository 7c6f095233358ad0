"""Pure builders: run keys and S3 layout, EMR cluster spec and step, run plan, params, zip."""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from fruits_contract.job_request import JobRequest
from fruits_contract.modes import MODES
from fruits_features.compute.emr_settings import EmrSettings
from fruits_features.compute.emr_spec import (
    AM_MEMORY_MB,
    NODE_TYPES,
    SizingError,
    SparkSizing,
    cluster_spec,
    log_uri,
    spark_sizing,
    spark_step,
    step_command,
    step_log_uri,
    yarn_fit_problems,
)
from fruits_features.compute.registry import compute_backend
from fruits_features.input_check import summarize_inputs
from fruits_features.job_package import MissingArtifactError, artifact_files, build_job_zip
from fruits_features.plan import RunPlan, build_plan
from fruits_features.run_params import RunParams, parse_run_params
from fruits_features.s3 import relative_key
from fruits_features.s3_layout import run_key, run_layout, split_s3_uri, training_relative
from fruits_features.settings import build_config

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "manual__2026-01-02T03:04:05.678901+00:00"
KEY = "manual__2026-01-02T03_04_05.678901_00_00"
CONFIG = build_config({"bucket": "my-bucket"})


def planned(config, params: RunParams, planned_images: int) -> RunPlan:
    """The run's whole plan, the backend's section included, as check_inputs makes it."""
    plan = build_plan(config, params, RUN_ID, planned_images)
    return plan.with_backend(compute_backend(config.compute).plan_section(config, plan))


EMR = CONFIG.group(EmrSettings)
SIZING = spark_sizing("m5.2xlarge", 2, "m5.2xlarge")


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
    assert run_layout(CONFIG, "mini", KEY).listing_prefix == "fruits-360/Training/Apple"
    assert run_layout(CONFIG, "full", KEY).listing_prefix == "fruits-360/Training/"
    keys = [
        "fruits-360/Training/Apple Braeburn/1_100.jpg",
        "fruits-360/Training/Apple Braeburn/2_100.JPEG",
        "fruits-360/Training/Apple Red 1/3_100.png",
        "fruits-360/Training/Apple Red 1/notes.txt",
        "fruits-360/Training/Banana/1_100.jpg",
        "fruits-360/Training/stray.jpg",
        "fruits-360/Test/Apple Braeburn/1_100.jpg",
    ]
    assert training_relative(keys[0], "fruits-360") == "Apple Braeburn/1_100.jpg"
    assert training_relative(keys[6], "fruits-360") is None  # Test/ is never read
    objects = [{"Key": key, "Size": 100} for key in keys]
    apples = summarize_inputs(objects, "fruits-360", MODES["apples"])
    assert apples.images == 3
    assert apples.classes == {"Apple Braeburn": 2, "Apple Red 1": 1}
    full = summarize_inputs(objects, "fruits-360", MODES["full"])
    assert full.images == 4
    assert full.skipped == 2
    assert full.first_skipped == [
        (keys[3], "not an image file (.jpg, .jpeg or .png)"),
        (keys[5], "not in a class folder (Training/<class>/<file>)"),
    ]


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


TAGS = {"deployment": "default", "run_token": "0123456789abcdef"}


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
    tags = {"deployment": "prod", "run_token": "00112233aabbccdd"}
    assert cluster_spec(EMR, SIZING, layout, RUN_ID, "apples", "onnxruntime", **tags) == {
        "Name": f"fruits-features-apples-{KEY}",
        "ReleaseLabel": "emr-7.11.0",
        "Applications": [{"Name": "Spark"}, {"Name": "Hadoop"}],
        "LogUri": "s3://my-bucket/fruits-features/emr-logs/",
        "EbsRootVolumeSize": 30,
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
                    "Args": [
                        artifacts + "requirements-emr-driver.txt",
                        artifacts + "requirements-emr-worker-onnxruntime.txt",
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
                    "spark.yarn.maxAppAttempts": "1",
                    # 2 x m5.2xlarge (8 vCPUs, YARN 24,576 MB): 2 executors of 4 cores per
                    # node, 2 x 11,776 MB + the application master's 896 MB = 24,448 MB.
                    "spark.dynamicAllocation.enabled": "false",
                    "spark.executor.instances": "4",
                    "spark.executor.cores": "4",
                    "spark.default.parallelism": "16",
                    "spark.task.cpus": "1",
                    "spark.executor.memory": "5120m",
                    "spark.executor.memoryOverhead": "6656m",
                },
            },
            {"Classification": "delta-defaults", "Properties": {"delta.enabled": "true"}},
        ],
        "JobFlowRole": "EMR_EC2_DefaultRole",
        "ServiceRole": "EMR_DefaultRole",
        "Tags": [
            {"Key": "project", "Value": "fruits-features"},
            {"Key": "deployment", "Value": "prod"},
            {"Key": "run_token", "Value": "00112233aabbccdd"},
            {"Key": "run_id", "Value": RUN_ID},
            {"Key": "mode", "Value": "apples"},
        ],
        "AutoTerminationPolicy": {"IdleTimeout": 3600},
    }


def test_cluster_spec_follows_config():
    config = build_config(
        {
            "core_instance_type": "r5.2xlarge",
            "core_instance_count": "4",
            "subnet_id": "subnet-0abc1234",
            "emr_python": "/opt/py/bin/python",
            "idle_timeout_seconds": "900",
        }
    )
    emr = config.group(EmrSettings)
    sizing = spark_sizing(emr.core_instance_type, emr.core_instance_count)
    layout = run_layout(config, "full", KEY)
    spec = cluster_spec(emr, sizing, layout, RUN_ID, "full", "openvino", **TAGS)
    core = spec["Instances"]["InstanceGroups"][1]
    assert (core["InstanceType"], core["InstanceCount"]) == ("r5.2xlarge", 4)
    assert spec["BootstrapActions"][0]["ScriptBootstrapAction"]["Args"][1].endswith(
        "requirements-emr-worker-openvino.txt"
    )
    assert spec["Instances"]["Ec2SubnetId"] == "subnet-0abc1234"
    assert spec["Configurations"][0]["Configurations"][0]["Properties"] == {
        "PYSPARK_PYTHON": "/opt/py/bin/python"
    }
    assert spec["AutoTerminationPolicy"] == {"IdleTimeout": 900}
    layout = run_layout(CONFIG, "full", KEY)
    default = cluster_spec(EMR, SIZING, layout, RUN_ID, "full", "tensorflow", **TAGS)
    assert "Ec2SubnetId" not in default["Instances"]


def test_spark_step_exact():
    run = build_plan(CONFIG, RunParams("mini", 5, 24), RUN_ID, 24)
    artifacts = f"s3://my-bucket/fruits-features/artifacts/{KEY}/"
    invocation = run.invocation()
    step = spark_step(invocation, f"fruits-features mini {KEY}", SIZING, 7500)
    assert step == {
        "Name": f"fruits-features mini {KEY}",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": [
                # A step cannot outlive its maximum run time (the sensor's timeout + 5 min).
                *("timeout", "--kill-after=60", "7500"),
                "spark-submit",
                "--deploy-mode",
                "client",
                "--driver-memory",
                "8192m",
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
                "--feature-store",
                "s3://my-bucket/fruits-features/feature-store",
                # Mode mini exports its vectors (FRUITS_EXPORT_FEATURES=auto).
                "--export-features",
            ],
        },
    }


def test_a_step_cannot_outlive_its_maximum_run_time():
    """Without a teardown (Airflow down, the run deleted), a hung step would keep its
    cluster busy, never idle, forever. As command-runner.jar runs it, the step's command ends
    at its maximum: the sensor's timeout and five minutes."""
    started = time.monotonic()
    done = subprocess.run(step_command(["sleep", "60"], 1), check=False)
    assert done.returncode == 124  # the step FAILED; the cluster is then idle
    assert time.monotonic() - started < 10
    config = build_config({"bucket": "my-bucket", "step_timeout_seconds": "900"})
    plan = build_plan(config, RunParams("mini", 5, 24), RUN_ID, 24, maintain=True)
    steps = compute_backend("emr").plan_section(config, plan)["emr_steps"]
    assert [s["HadoopJarStep"]["Args"][:4] for s in steps] == [
        ["timeout", "--kill-after=60", "1200", "spark-submit"]
    ] * 2


def test_the_step_is_what_the_job_parses():
    """The step's arguments, after spark-submit's, through the job's own parser."""
    from fruits_job.job import parse as parse_args

    run = build_plan(CONFIG, RunParams("mini", 5, 24), RUN_ID, 24)
    args = spark_step(run.invocation(), "x", SIZING, 7500)["HadoopJarStep"]
    argv = args["Args"]
    entry = argv.index(run.layout.artifact_uri("process_fruits_data.py"))
    parsed = parse_args(argv[entry + 1 :])
    assert (parsed.mode, parsed.pca_components, parsed.limit) == ("mini", 5, 24)
    assert (parsed.partitions, parsed.engine, parsed.run_id) == (None, "onnxruntime", RUN_ID)
    assert parsed.input_uri == run.layout.input_uri
    assert parsed.output_uri == run.layout.output_uri
    assert parsed.weights_uri == run.layout.artifact_uri("mobilenet_v2_1.0_224_no_top.weights.h5")
    assert parsed == run.invocation().request


@pytest.mark.parametrize(
    ("instance_type", "count", "executors", "cores", "heap", "overhead"),
    [
        ("m5.2xlarge", 2, 4, 4, 5120, 6656),  # the reference deployment
        ("m5.xlarge", 3, 3, 4, 5120, 6144),
        ("m5.4xlarge", 2, 8, 4, 6144, 7680),
        ("r5.2xlarge", 2, 4, 4, 12288, 15872),
        ("c5.4xlarge", 1, 4, 4, 2560, 3072),
    ],
)
def test_spark_sizing_fills_the_nodes_yarn_memory(
    instance_type, count, executors, cores, heap, overhead
):
    sizing = spark_sizing(instance_type, count)
    assert (sizing.executors, sizing.executor_cores) == (executors, cores)
    assert (sizing.heap_mb, sizing.overhead_mb) == (heap, overhead)
    node = NODE_TYPES[instance_type]
    # One task per core, never more cores asked than the core nodes have.
    assert sizing.executors * sizing.executor_cores == count * node.vcpus
    assert sizing.spark_defaults()["spark.default.parallelism"] == str(count * node.vcpus)
    # Everything fits, with less than 1 GiB of each node's YARN memory left unused.
    assert yarn_fit_problems(sizing, instance_type, "m5.2xlarge") == []
    used = sizing.executors_per_node * (heap + overhead) + AM_MEMORY_MB
    assert 0 <= node.yarn_memory_mb - used < 1024 + 512 * sizing.executors_per_node


def test_yarn_fit_names_what_does_not_fit():
    too_big = SparkSizing(
        nodes=2,
        executors_per_node=2,
        executor_cores=4,
        heap_mb=8192,
        overhead_mb=6144,
        driver_memory_mb=30 * 1024,
    )
    problems = yarn_fit_problems(too_big, "m5.2xlarge", "m5.2xlarge")
    assert any("need 29568 MB per m5.2xlarge, YARN offers 24576 MB" in p for p in problems)
    assert any("does not fit on a m5.2xlarge master" in p for p in problems)
    wide = SparkSizing(2, 3, 4, 2048, 2048, 4096)
    assert any(
        "exceed the 8 vCPUs" in p for p in yarn_fit_problems(wide, "m5.2xlarge", "m5.xlarge")
    )


def test_unknown_instance_types_are_refused_with_the_known_ones():
    with pytest.raises(SizingError, match=r"'m5\.metal'.*supported: m5\.xlarge"):
        spark_sizing("m5.metal", 2)


def test_a_plan_that_cannot_fit_fails_before_any_cluster():
    config = build_config({"core_instance_type": "m6i.2xlarge"})
    with pytest.raises(SizingError, match=r"m6i\.2xlarge"):
        planned(config, RunParams("mini", 5, 24), 24)
    # The local backend builds no EMR spec: the same setting does not break local runs.
    local = build_config({"core_instance_type": "m6i.2xlarge", "compute": "local"})
    assert "emr_cluster" not in planned(local, RunParams("mini", 5, 24), 24).to_xcom()


def test_job_arguments_without_limit():
    request = JobRequest(
        input_uri="in",
        output_uri="out",
        weights_uri="w",
        mode="full",
        pca_components=50,
        run_id="r",
    )
    assert request.to_argv() == [
        *["--input", "in", "--output", "out", "--mode", "full", "--pca-components", "50"],
        *["--weights", "w", "--run-id", "r", "--engine", "onnxruntime"],
    ]
    assert JobRequest.from_argv(request.to_argv()) == request


def test_plan_goes_through_xcom_whole():
    import json

    plan = planned(CONFIG, RunParams("mini", 5, 24), 24)
    data = plan.to_xcom()
    assert json.loads(json.dumps(data)) == data
    assert RunPlan.from_xcom(json.loads(json.dumps(data))) == plan
    layout = plan.layout
    assert layout.run_key == KEY
    assert layout.output_prefix == f"fruits-features/runs/mini/{KEY}/"
    assert plan.results_dir == str(REPO / "results" / "mini" / KEY)
    # What the EMR operators take, each an XCom of its own.
    assert {"run_id", "aws_conn_id", "region", "emr_cluster", "emr_steps"} <= set(data)
    args = data["emr_steps"][0]["HadoopJarStep"]["Args"]
    assert args[-5:-3] == ["--limit", "24"]
    assert args[-3:-1] == ["--feature-store", f"s3://{layout.bucket}/fruits-features/feature-store"]
    assert args[-1] == "--export-features"
    assert plan.params.engine == "onnxruntime"
    watch = {"poll_seconds": 60, "timeout_seconds": 7200, "deferrable": True}
    assert data["emr_watch"] == {
        **watch,
        "log_wait_seconds": 300,
        "deadline": data["emr_watch"]["deadline"],
    }
    # 24 planned images: 1.5 x (600 s + 24 / 20 per s), announced once, by a conditional write.
    deadline = data["emr_watch"]["deadline"]
    assert (deadline["seconds"], deadline["timeout_seconds"], deadline["mode"]) == (
        902,
        7200,
        "mini",
    )
    assert (
        deadline["marker"]
        == f"s3://{layout.bucket}/fruits-features/runs/mini/_claims/{KEY}.overdue.json"
    )
    assert "local" not in data


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
    assert {"fruits_job/__init__.py", "fruits_contract/__init__.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # Importable from the zip alone, as Spark's Python workers import it (--py-files).
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import fruits_job.job, fruits_job.feature_store, fruits_contract.job_request; "
        "print(fruits_job.job.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(first)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{first}/fruits_job/job.py"


def test_missing_job_files_are_named(tmp_path):
    with pytest.raises(MissingArtifactError, match=r"process_fruits_data\.py"):
        artifact_files(tmp_path, tmp_path)


def test_every_engine_the_contract_names_is_implemented_by_the_job():
    from fruits_contract.engines import DEFAULT_ENGINE, ENGINES
    from fruits_job.engines import ENGINES as IMPLEMENTED

    assert list(ENGINES) == list(IMPLEMENTED)
    assert DEFAULT_ENGINE in ENGINES and build_config({}).runs.engine == DEFAULT_ENGINE
