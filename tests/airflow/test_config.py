"""PipelineConfig: defaults, precedence of sources, and one clear error per bad value."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from fruits_features.compute.emr_settings import EmrSettings
from fruits_features.compute.local import LocalSettings
from fruits_features.config import ConfigError, env_name
from fruits_features.settings import (
    build_config,
    collect_settings,
    config_at_parse_time,
    setting_fields,
)

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_the_reference_deployment():
    config = build_config({})
    emr = config.group(EmrSettings)
    assert (config.compute, config.storage.region, config.storage.bucket) == (
        "emr",
        "eu-west-1",
        "fruits-features-eu-west-1",
    )
    assert (emr.emr_release, emr.core_instance_count, emr.core_instance_type) == (
        "emr-7.11.0",
        2,
        "m5.2xlarge",
    )
    runs = config.runs
    assert (runs.schedule, runs.schedule_timezone, runs.scheduled_mode) == (
        "0 2 * * *",
        "Europe/Paris",
        "full",
    )
    assert emr.sensor_deferrable is True
    assert emr.idle_timeout_seconds == 3600
    assert config.core.step_poll_seconds == 60
    assert runs.pca_components == 50
    assert config.group(LocalSettings).local_spark_master == "local[2]"
    assert config.project_path == REPO
    assert config.results_path == REPO / "results"


def test_frozen():
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        build_config({}).storage.bucket = "other"  # type: ignore[misc]


def test_setting_names_are_unique_across_groups():
    names = [name for _, name, _ in setting_fields()]
    assert len(names) == len(set(names))


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
    emr = config.group(EmrSettings)
    assert config.compute == "local"
    assert emr.core_instance_count == 5
    assert emr.sensor_deferrable is False
    assert config.storage.output_prefix == "a/b"
    assert emr.subnet_id == "subnet-0123abcd"
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
    assert config.storage.bucket == "from-variable"
    assert config.storage.region == "us-west-2"
    assert config.group(EmrSettings) == build_config({}).group(EmrSettings)
    assert origins["bucket"] == "Variable fruits_bucket"


def test_parse_time_reads_env_backed_variables_first():
    environ = {"FRUITS_COMPUTE": "emr", "AIRFLOW_VAR_FRUITS_COMPUTE": "local"}
    assert config_at_parse_time(environ).compute == "local"
    assert config_at_parse_time({"FRUITS_COMPUTE": "local"}).compute == "local"
    assert config_at_parse_time({}).compute == "emr"


def test_blank_values_count_as_unset():
    # docker-compose passes `FRUITS_X:` through as an empty string
    assert config_at_parse_time({"FRUITS_BUCKET": "", "FRUITS_CORE_INSTANCE_COUNT": " "}) == (
        build_config({})
    )


def test_error_says_where_the_value_came_from():
    with pytest.raises(ConfigError, match="Variable fruits_core_instance_count"):
        values, origins = collect_settings({}, {"fruits_core_instance_count": "-1"}.get)
        build_config(values, origins)
    with pytest.raises(ConfigError, match="environment variable FRUITS_CORE_INSTANCE_COUNT"):
        config_at_parse_time({"FRUITS_CORE_INSTANCE_COUNT": "-1"})


def test_every_setting_has_a_description():
    assert all(info.description for _, _, info in setting_fields())
