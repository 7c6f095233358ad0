"""Deployment configuration: one validated, frozen object built from a mapping.

Every field ``<field>`` can be set by the Airflow Variable ``fruits_<field>`` or the environment
variable ``FRUITS_<FIELD>``; precedence Variable > environment > default. Variables stored in the
metadata database are read only at run time (``config_at_run_time``, inside a task); parse time
(``config_at_parse_time``) sees the environment only, which includes ``AIRFLOW_VAR_FRUITS_*``.
Blank values count as unset.

Settings (environment names; defaults = the reference AWS deployment):

- FRUITS_COMPUTE: ``emr`` or ``local`` (parse time: picks the DAG's compute segment)
- FRUITS_AWS_CONN_ID: Airflow AWS connection (``aws_default``)
- FRUITS_REGION: AWS region (``eu-west-1``)
- FRUITS_BUCKET: bucket of inputs, outputs, artifacts and EMR logs
- FRUITS_INPUT_PREFIX: key prefix holding ``Training/<class>/<image>`` (``fruits-360``)
- FRUITS_OUTPUT_PREFIX: runs go to ``<prefix>/<mode>/<run_key>/`` (``fruits-features/runs``)
- FRUITS_ARTIFACTS_PREFIX: code/bootstrap/weights of a run (``fruits-features/artifacts``)
- FRUITS_LOG_PREFIX: EMR LogUri (``fruits-features/emr-logs``)
- FRUITS_EMR_RELEASE: ``emr-7.11.0``
- FRUITS_MASTER_INSTANCE_TYPE, FRUITS_CORE_INSTANCE_TYPE: ``m5.2xlarge``
- FRUITS_CORE_INSTANCE_COUNT: ``2``
- FRUITS_EBS_VOLUME_GB: gp3 volume per node (``64``)
- FRUITS_EMR_SERVICE_ROLE: ``EMR_DefaultRole``
- FRUITS_EMR_INSTANCE_PROFILE: ``EMR_EC2_DefaultRole``
- FRUITS_EMR_PYTHON: PYSPARK_PYTHON on the cluster, the bootstrap's venv
  (``/opt/fruits-features/venv/bin/python``)
- FRUITS_SUBNET_ID: empty = the default VPC
- FRUITS_IDLE_TIMEOUT_SECONDS: EMR auto-termination when idle (``3600``)
- FRUITS_STEP_TIMEOUT_SECONDS: longest wait for the Spark step, local run too (``7200``)
- FRUITS_STEP_POLL_SECONDS: step polling interval (``60``)
- FRUITS_SENSOR_DEFERRABLE: wait for the step in the triggerer (``true``)
- FRUITS_HOURLY_PRICES_USD: JSON ``{"instance type": USD per hour}`` (EC2 + EMR uplift) for the
  run report's cost estimate; empty = the report's eu-west-1 table
- FRUITS_RESULTS_DIR: local copies go to ``<dir>/<mode>/<run_key>/``; relative to the
  project dir (``results``)
- FRUITS_SCHEDULE, FRUITS_SCHEDULE_TIMEZONE: ``0 2 * * *`` in ``Europe/Paris`` (parse time)
- FRUITS_SCHEDULED_MODE: mode of scheduled runs and default of the form (``full``, parse time)
- FRUITS_PCA_COMPONENTS: default K (``50``, parse time)
- FRUITS_ENGINE: default inference engine of the form (``onnxruntime``, parse time)
- FRUITS_LOCAL_SPARK_MASTER: ``local[2]``
- FRUITS_LOCAL_SPARK_DRIVER_MEMORY: heap of the local Spark driver, which also holds the
  cached features (``2g``)
- FRUITS_PROJECT_DIR: folder holding spark/, bootstrap/, models/ (default: the repository)
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from croniter import croniter

ENV_PREFIX = "FRUITS_"
VARIABLE_PREFIX = "fruits_"
AIRFLOW_VAR_ENV_PREFIX = "AIRFLOW_VAR_"

COMPUTE_BACKENDS = ("emr", "local")
MODES = ("mini", "apples", "full")
# The job's --engine choices (spark/fruits_job/engines.py; a test keeps the two in step).
ENGINES = ("onnxruntime", "tensorflow", "openvino")
FEATURE_DIM = 1280

# plugins/fruits_features/config.py -> the repository root holding spark/, bootstrap/, models/.
DEFAULT_PROJECT_DIR = str(Path(__file__).resolve().parents[2])


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the setting."""


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of one deployment; defaults describe the reference AWS deployment."""

    compute: str = "emr"
    aws_conn_id: str = "aws_default"
    region: str = "eu-west-1"
    bucket: str = "fruits-features-eu-west-1"
    input_prefix: str = "fruits-360"
    output_prefix: str = "fruits-features/runs"
    artifacts_prefix: str = "fruits-features/artifacts"
    log_prefix: str = "fruits-features/emr-logs"
    emr_release: str = "emr-7.11.0"
    master_instance_type: str = "m5.2xlarge"
    core_instance_type: str = "m5.2xlarge"
    core_instance_count: int = 2
    ebs_volume_gb: int = 64
    emr_service_role: str = "EMR_DefaultRole"
    emr_instance_profile: str = "EMR_EC2_DefaultRole"
    # The interpreter of the venv that bootstrap/install_dependencies.sh creates on every node.
    emr_python: str = "/opt/fruits-features/venv/bin/python"
    subnet_id: str = ""
    idle_timeout_seconds: int = 3600
    step_timeout_seconds: int = 7200
    step_poll_seconds: int = 60
    sensor_deferrable: bool = True
    hourly_prices_usd: str = ""
    results_dir: str = "results"
    schedule: str = "0 2 * * *"
    schedule_timezone: str = "Europe/Paris"
    scheduled_mode: str = "full"
    pca_components: int = 50
    engine: str = "onnxruntime"
    local_spark_master: str = "local[2]"
    local_spark_driver_memory: str = "2g"
    project_dir: str = field(default=DEFAULT_PROJECT_DIR)

    @property
    def project_path(self) -> Path:
        return Path(self.project_dir)

    @property
    def results_path(self) -> Path:
        """``results_dir``, relative paths taken from the project directory (not the cwd)."""
        path = Path(self.results_dir)
        return path if path.is_absolute() else self.project_path / path

    @property
    def hourly_prices(self) -> dict[str, float] | None:
        """Configured prices, or None for the report's default table."""
        return json.loads(self.hourly_prices_usd) if self.hourly_prices_usd else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot, kept in the run plan so all tasks of a run see the same values."""
        return dataclasses.asdict(self)


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PipelineConfig))
_DEFAULTS = PipelineConfig()


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def variable_name(field_name: str) -> str:
    return VARIABLE_PREFIX + field_name


# --- value parsers: take a raw value (str from env/Variable, or typed from a plan snapshot),
# return the typed value or raise ValueError with what is expected.


def _text(pattern: str, what: str, *, allow_empty: bool = False) -> Callable[[Any], str]:
    regex = re.compile(pattern)

    def parse(raw: Any) -> str:
        value = str(raw).strip()
        if allow_empty and value == "":
            return value
        if not regex.fullmatch(value):
            raise ValueError(f"expected {what}")
        return value

    return parse


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError(f"expected an integer between {low} and {high}")
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"expected an integer between {low} and {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected an integer between {low} and {high}")
        return value

    return parse


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


def _prefix(raw: Any) -> str:
    # Keys are joined with "/" later; one canonical form avoids "a//b" and leading-slash keys.
    value = str(raw).strip().strip("/")
    if not value or "//" in value or any(part in (".", "..") for part in value.split("/")):
        raise ValueError("expected a non-empty S3 key prefix such as 'fruits-features/runs'")
    return value


def _cron(raw: Any) -> str:
    value = str(raw).strip()
    if not croniter.is_valid(value):
        raise ValueError("expected a 5-field cron expression such as '0 2 * * *'")
    return value


def _timezone(raw: Any) -> str:
    value = str(raw).strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as 'Europe/Paris'") from None
    return value


def _prices(raw: Any) -> str:
    text = str(raw).strip()
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


def _path(raw: Any) -> str:
    value = str(raw).strip()
    if not value:
        raise ValueError("expected a path")
    return value


_INSTANCE_TYPE = _text(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "an EC2 instance type such as 'm5.2xlarge'")
_NAME = _text(r"[A-Za-z0-9_+=,.@/-]{1,128}", "an IAM role or profile name")

PARSERS: dict[str, Callable[[Any], Any]] = {
    "compute": _choice(*COMPUTE_BACKENDS),
    "aws_conn_id": _text(r"[A-Za-z0-9_.-]{1,250}", "an Airflow connection id"),
    "region": _text(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region such as 'eu-west-1'"),
    # S3 bucket naming rules, minus the rarely used dotted names.
    "bucket": _text(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", "a bucket name (3-63 of a-z 0-9 -)"),
    "input_prefix": _prefix,
    "output_prefix": _prefix,
    "artifacts_prefix": _prefix,
    "log_prefix": _prefix,
    "emr_release": _text(r"emr-\d+\.\d+\.\d+", "an EMR release label such as 'emr-7.11.0'"),
    "master_instance_type": _INSTANCE_TYPE,
    "core_instance_type": _INSTANCE_TYPE,
    "core_instance_count": _integer(1, 100),
    "ebs_volume_gb": _integer(8, 4096),
    "emr_service_role": _NAME,
    "emr_instance_profile": _NAME,
    "emr_python": _text(r"/\S+", "an absolute path to a python interpreter"),
    "subnet_id": _text(
        r"subnet-[0-9a-f]{8,17}", "a subnet id 'subnet-…' or empty", allow_empty=True
    ),
    "idle_timeout_seconds": _integer(60, 7 * 24 * 3600),
    "step_timeout_seconds": _integer(60, 7 * 24 * 3600),
    "step_poll_seconds": _integer(1, 3600),
    "sensor_deferrable": _boolean,
    "hourly_prices_usd": _prices,
    "results_dir": _path,
    "schedule": _cron,
    "schedule_timezone": _timezone,
    "scheduled_mode": _choice(*MODES),
    "pca_components": _integer(1, FEATURE_DIM),
    "engine": _choice(*ENGINES),
    "local_spark_master": _text(
        r"local(\[(\*|\d+)(,\d+)?\])?", "'local', 'local[N]' or 'local[*]'"
    ),
    "local_spark_driver_memory": _text(r"\d+[mg]", "a JVM memory size such as '2g' or '1536m'"),
    "project_dir": _path,
}
assert set(PARSERS) == set(FIELD_NAMES), "every config field needs a parser"


def build_config(
    values: Mapping[str, Any], origins: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Build and validate a config from ``{field: raw value}``; missing fields keep defaults.

    ``origins`` says where each value came from, for the error message.
    """
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"unknown configuration field(s): {', '.join(unknown)}")
    origins = origins or {}
    parsed: dict[str, Any] = {}
    for name, raw in values.items():
        try:
            parsed[name] = PARSERS[name](raw)
        except ValueError as error:
            origin = origins.get(name, f"environment variable {env_name(name)}")
            raise ConfigError(f"bad {env_name(name)} (from {origin}): {raw!r}: {error}") from None
    config = dataclasses.replace(_DEFAULTS, **parsed)
    if config.step_poll_seconds > config.step_timeout_seconds:
        raise ConfigError(
            f"bad {env_name('step_poll_seconds')}: {config.step_poll_seconds} is longer than "
            f"{env_name('step_timeout_seconds')} ({config.step_timeout_seconds})"
        )
    return config


def collect_settings(
    environ: Mapping[str, str], variable: Callable[[str], str | None] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Pick raw values by precedence Variable > env-backed Variable > ``FRUITS_*`` env.

    ``variable(name)`` looks a Variable up (``None`` when unset); without it only the environment
    is used, ``AIRFLOW_VAR_FRUITS_*`` included. Blank values count as unset, so a compose file can
    pass an empty setting through without overriding the default.
    """
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    for name in FIELD_NAMES:
        candidates: list[tuple[str | None, str]] = []
        if variable is not None:
            candidates.append((variable(variable_name(name)), f"Variable {variable_name(name)}"))
        else:
            key = AIRFLOW_VAR_ENV_PREFIX + variable_name(name).upper()
            candidates.append((environ.get(key), f"Variable {variable_name(name)} ({key})"))
        candidates.append((environ.get(env_name(name)), f"environment variable {env_name(name)}"))
        for raw, origin in candidates:
            if raw is not None and str(raw).strip() != "":
                values[name] = raw
                origins[name] = origin
                break
    return values, origins


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


def config_from_snapshot(snapshot: Mapping[str, Any]) -> PipelineConfig:
    """Rebuild the config a run started with (``PipelineConfig.as_dict`` stored in the plan)."""
    return build_config(snapshot, dict.fromkeys(snapshot, "the run plan"))
