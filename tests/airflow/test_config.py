"""PipelineConfig: defaults, precedence of sources, and one clear error per bad value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fruits_features import config as config_module
from fruits_features.config import (
    FIELD_NAMES,
    ConfigError,
    PipelineConfig,
    build_config,
    collect_settings,
    config_at_parse_time,
    config_from_snapshot,
    env_name,
)

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_the_reference_deployment():
    config = build_config({})
    assert config == PipelineConfig()
    assert (config.compute, config.region, config.bucket) == (
        "emr",
        "eu-west-1",
        "fruits-features-eu-west-1",
    )
    assert (config.emr_release, config.core_instance_count, config.core_instance_type) == (
        "emr-7.11.0",
        2,
        "m5.2xlarge",
    )
    assert (config.schedule, config.schedule_timezone, config.scheduled_mode) == (
        "0 2 * * *",
        "Europe/Paris",
        "full",
    )
    assert config.sensor_deferrable is True
    assert config.idle_timeout_seconds == 3600
    assert config.step_poll_seconds == 60
    assert config.pca_components == 50
    assert config.local_spark_master == "local[2]"
    assert Path(config.project_dir) == REPO
    assert config.results_path == REPO / "results"


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PipelineConfig().bucket = "other"  # type: ignore[misc]


def test_values_are_parsed_and_normalised():
    config = build_config(
        {
            "compute": "LOCAL",
            "core_instance_count": " 5 ",
            "sensor_deferrable": "no",
            "output_prefix": "/a/b/",
            "subnet_id": "subnet-0123abcd",
            "results_dir": "/data/results",
        }
    )
    assert config.compute == "local"
    assert config.core_instance_count == 5
    assert config.sensor_deferrable is False
    assert config.output_prefix == "a/b"
    assert config.subnet_id == "subnet-0123abcd"
    assert config.results_path == Path("/data/results")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("compute", "kubernetes"),
        ("region", "Ireland"),
        ("bucket", "Bad_Bucket"),
        ("output_prefix", "a//b"),
        ("input_prefix", "../x"),
        ("emr_release", "7.11"),
        ("core_instance_type", "big"),
        ("core_instance_count", "0"),
        ("core_instance_count", "two"),
        ("ebs_volume_gb", "1"),
        ("subnet_id", "vpc-123"),
        ("sensor_deferrable", "maybe"),
        ("schedule", "0 25 * * *"),
        ("schedule_timezone", "Mars/Olympus"),
        ("scheduled_mode", "pears"),
        ("pca_components", "1281"),
        ("local_spark_master", "yarn"),
        ("emr_python", "python3"),
    ],
)
def test_bad_value_names_the_variable(field, value):
    with pytest.raises(ConfigError) as error:
        build_config({field: value})
    assert env_name(field) in str(error.value)
    assert repr(value) in str(error.value)


def test_poll_longer_than_timeout_is_refused():
    with pytest.raises(ConfigError, match="FRUITS_STEP_POLL_SECONDS"):
        build_config({"step_poll_seconds": "600", "step_timeout_seconds": "300"})


def test_unknown_field_is_refused():
    with pytest.raises(ConfigError, match="colour"):
        build_config({"colour": "red"})


def test_precedence_variable_over_env_over_default():
    environ = {"FRUITS_BUCKET": "from-env", "FRUITS_REGION": "us-west-2"}
    variables = {"fruits_bucket": "from-variable"}
    values, origins = collect_settings(environ, variables.get)
    config = build_config(values, origins)
    assert config.bucket == "from-variable"
    assert config.region == "us-west-2"
    assert config.log_prefix == PipelineConfig().log_prefix
    assert origins["bucket"] == "Variable fruits_bucket"


def test_parse_time_reads_env_backed_variables_first():
    environ = {"FRUITS_COMPUTE": "emr", "AIRFLOW_VAR_FRUITS_COMPUTE": "local"}
    assert config_at_parse_time(environ).compute == "local"
    assert config_at_parse_time({"FRUITS_COMPUTE": "local"}).compute == "local"
    assert config_at_parse_time({}).compute == "emr"


def test_blank_values_count_as_unset():
    # docker-compose passes `FRUITS_X:` through as an empty string
    assert config_at_parse_time({"FRUITS_BUCKET": "", "FRUITS_CORE_INSTANCE_COUNT": " "}) == (
        PipelineConfig()
    )


def test_error_says_where_the_value_came_from():
    with pytest.raises(ConfigError, match="Variable fruits_core_instance_count"):
        values, origins = collect_settings({}, {"fruits_core_instance_count": "-1"}.get)
        build_config(values, origins)
    with pytest.raises(ConfigError, match="environment variable FRUITS_CORE_INSTANCE_COUNT"):
        config_at_parse_time({"FRUITS_CORE_INSTANCE_COUNT": "-1"})


def test_snapshot_round_trip():
    config = build_config({"compute": "local", "core_instance_count": 3, "subnet_id": ""})
    assert config_from_snapshot(config.as_dict()) == config


def test_every_setting_is_documented_by_name():
    # The FRUITS_* names are also read from this module's text by tests/infra.
    doc = config_module.__doc__ or ""
    missing = [env_name(name) for name in FIELD_NAMES if env_name(name) not in doc]
    assert not missing
