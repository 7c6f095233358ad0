"""The deployment's settings: the project's groups and each compute backend's, read from
Airflow Variables and the environment, validated once.

Variables stored in the metadata database are read only at run time (``config_at_run_time``,
inside a task); parse time (``config_at_parse_time``) sees the environment only, which
includes ``AIRFLOW_VAR_FRUITS_*``.

    PYTHONPATH=plugins .venv/bin/python -m fruits_features.settings   # the README's tables
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from fruits_features import config
from fruits_features.alerts import AlertSettings
from fruits_features.compute.registry import BACKENDS
from fruits_features.config import PipelineConfig, SettingsGroup


def setting_groups() -> list[type[SettingsGroup]]:
    """Every group: the project's, then each compute backend's."""
    return [
        *config.PROJECT_GROUPS,
        AlertSettings,
        *(backend.settings for backend in BACKENDS.values()),
    ]


def setting_fields() -> Iterator[tuple[type[SettingsGroup], str, Any]]:
    """(group, field name, pydantic FieldInfo) of every setting."""
    return config.setting_fields(setting_groups())


def build_config(
    values: Mapping[str, Any], origins: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Build and validate a config from ``{field: raw value}``; missing fields keep defaults.

    ``origins`` says where each value came from, for the error message.
    """
    context = {"backends": list(BACKENDS)}
    return config.validate_groups(values, setting_groups(), origins, context)


def collect_settings(
    environ: Mapping[str, str], variable: Callable[[str], str | None] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Raw values and where each came from (``config.collect_values``), for every setting."""
    names = [name for _, name, _ in setting_fields()]
    return config.collect_values(environ, names, variable)


def config_at_parse_time(environ: Mapping[str, str] | None = None) -> PipelineConfig:
    """Config for building the DAG: environment only, never the metadata database."""
    values, origins = collect_settings(os.environ if environ is None else environ)
    return build_config(values, origins)


def config_at_run_time(environ: Mapping[str, str] | None = None) -> PipelineConfig:
    """Config inside a task: Airflow Variables (any secrets backend) > environment > defaults."""
    from airflow.sdk import Variable

    def variable(key: str) -> str | None:
        value = Variable.get(key, default=None)
        return None if value is None else str(value)

    values, origins = collect_settings(os.environ if environ is None else environ, variable)
    return build_config(values, origins)


def parse_time_settings() -> list[str]:
    """Names of the settings the DAG file reads when it is parsed."""
    return [name for _, name, info in setting_fields() if config.is_parse_time(info)]


def settings_table() -> str:
    """The README's settings tables (Markdown), one per group."""
    return config.settings_table(setting_groups())


if __name__ == "__main__":
    sys.stdout.write(settings_table())
