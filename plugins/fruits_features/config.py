"""How settings are declared, read and validated: groups of fields, one frozen object.

Each setting is a field of one group: the project's groups below, and one per compute
backend (``compute/<backend>.py``); ``fruits_features.settings`` puts them together. A field
``<name>`` is set by the Airflow Variable ``fruits_<name>`` or the environment variable
``FRUITS_<NAME>``; precedence Variable > environment > default. Blank values count as unset.

The fields are the one source of the setting names: their descriptions make the README's
settings table, and tests check that the README, docker-compose.yaml and .env.example list
every one of them. This module knows no backend: the groups are given to it.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fruits_contract.engines import DEFAULT_ENGINE, FEATURE_DIM, OFFERED
from fruits_contract.modes import EXPORT_CHOICES, MODES

ENV_PREFIX = "FRUITS_"
VARIABLE_PREFIX = "fruits_"
AIRFLOW_VAR_ENV_PREFIX = "AIRFLOW_VAR_"

# plugins/fruits_features/config.py -> the repository root holding spark/, bootstrap/, models/.
DEFAULT_PROJECT_DIR = str(Path(__file__).resolve().parents[2])


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the setting."""


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def variable_name(field_name: str) -> str:
    return VARIABLE_PREFIX + field_name


# --- value types shared by the groups: each says in its error what it expects.


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return check


def _prefix(value: str) -> str:
    # Keys are joined with "/" later; one canonical form avoids "a//b" and leading-slash keys.
    value = value.strip("/")
    if not value or "//" in value or any(part in (".", "..") for part in value.split("/")):
        raise ValueError("expected a non-empty S3 key prefix such as 'fruits-features/runs'")
    return value


def _inventory(value: str) -> str:
    value = value.strip().rstrip("/")
    if value and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^/]+)+", value):
        raise ValueError("expected empty or s3://<bucket>/<prefix> of inventory reports")
    return value


def _cron(value: str) -> str:
    if not croniter.is_valid(value):
        raise ValueError("expected a 5-field cron expression such as '0 2 * * *'")
    return value


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as 'Europe/Paris'") from None
    return value


def matching(regex: str, what: str) -> Any:
    """A string matching ``regex`` in full, with ``what`` as the error (pydantic's says regex)."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"expected {what}")
        return value

    return AfterValidator(check)


Choice = Annotated[str, BeforeValidator(_lower)]
Prefix = Annotated[str, AfterValidator(_prefix)]
NonEmpty = Annotated[str, Field(min_length=1)]


def setting(default: Any, description: str, *, parse_time: bool = False, **constraints: Any):
    """A setting's field: its default, its line in the README, and when it is read."""
    return Field(
        default,
        description=description,
        json_schema_extra={"parse_time": parse_time},
        **constraints,
    )


class SettingsGroup(BaseModel):
    """One concern's settings. Field names are unique across groups: they make the env names."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    title: ClassVar[str]


class CoreSettings(SettingsGroup):
    title: ClassVar[str] = "Compute and project"

    compute: Choice = setting(
        "emr", "compute backend: `emr` or `local` (local Spark)", parse_time=True
    )
    step_timeout_seconds: int = setting(
        7200, "longest wait for the Spark job, local runs too", ge=60, le=7 * 24 * 3600
    )
    step_poll_seconds: int = setting(60, "how often the EMR step is polled", ge=1, le=3600)
    results_dir: NonEmpty = setting(
        "results",
        "where outputs are downloaded, `<dir>/<mode>/<run key>/` (relative: to the project dir)",
    )
    project_dir: NonEmpty = setting(
        DEFAULT_PROJECT_DIR,
        "folder holding `spark/`, `plugins/fruits_contract/`, `bootstrap/`, `models/` "
        "(default: this repository)",
    )
    download: Annotated[Choice, AfterValidator(_one_of("auto", "all", "summary"))] = setting(
        "auto",
        "what `download_outputs` copies to the results dir: `summary` (model_info/ and "
        "summary/: a size bounded whatever the bank's), `all` (also the data sets, which grow "
        "with the bank) or `auto` (`all` for a run of capped size: mode `mini` or a limit)",
    )
    results_keep: int = setting(
        7, "downloaded runs kept per mode in the results dir (older ones are removed)", ge=1
    )

    @field_validator("compute")
    @classmethod
    def _known_backend(cls, value: str, info: ValidationInfo) -> str:
        # The backends are not known here: whoever validates says which there are.
        backends = (info.context or {}).get("backends")
        return value if backends is None else _one_of(*backends)(value)

    @model_validator(mode="after")
    def _poll_within_timeout(self) -> CoreSettings:
        if self.step_poll_seconds > self.step_timeout_seconds:
            raise ValueError(
                f"bad {env_name('step_poll_seconds')}: {self.step_poll_seconds} is longer than "
                f"{env_name('step_timeout_seconds')} ({self.step_timeout_seconds})"
            )
        return self


class StorageSettings(SettingsGroup):
    title: ClassVar[str] = "AWS and S3"

    aws_conn_id: Annotated[str, matching(r"[A-Za-z0-9_.-]{1,250}", "an Airflow connection id")] = (
        setting("aws_default", "Airflow AWS connection used for S3 and EMR")
    )
    region: Annotated[
        str, matching(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region such as 'eu-west-1'")
    ] = setting("eu-west-1", "AWS region (GDPR: data stays in the EU)")
    deployment: Annotated[
        str, matching(r"[a-z0-9][a-z0-9-]{0,39}", "a name of a-z 0-9 - (at most 40)")
    ] = setting(
        "default",
        "this deployment's name, on every cluster it makes: give each deployment sharing an "
        "AWS account its own (`staging`, `prod`)",
    )
    # S3 bucket naming rules, minus the rarely used dotted names.
    bucket: Annotated[
        str, matching(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", "a bucket name (3-63 of a-z 0-9 -)")
    ] = setting("fruits-features-eu-west-1", "bucket holding inputs, outputs, artifacts, logs")
    input_prefix: Prefix = setting("fruits-360", "folder holding `Training/<class>/`")
    output_prefix: Prefix = setting(
        "fruits-features/runs", "runs go to `<prefix>/<mode>/<run key>/`"
    )
    artifacts_prefix: Prefix = setting(
        "fruits-features/artifacts", "job code, bootstrap, weights of each run"
    )
    inventory_uri: Annotated[str, AfterValidator(_inventory)] = setting(
        "",
        "an S3 Inventory configuration's reports (Parquet) of the bank's bucket, "
        "`s3://<destination>/<prefix>/<bucket>/<configuration id>`: runs read the bank's "
        "listing from its newest report instead of listing the bank (see Scale)",
    )


class FeatureStoreSettings(SettingsGroup):
    title: ClassVar[str] = "Feature store"

    feature_store_prefix: Prefix = setting(
        "fruits-features/feature-store",
        "the Delta table of every feature computed, reused by later runs (see Incremental runs)",
    )
    feature_store_maintenance_days: int = setting(
        7,
        "a run compacts the table and deletes unused files (OPTIMIZE, VACUUM) when the last "
        "maintenance is this many days old",
        ge=1,
        le=365,
    )
    feature_store_retention_hours: int = setting(
        168,
        "VACUUM keeps the files of the table's versions of this many hours (at least Delta's "
        "7 days: longer than any run, and a week of time travel)",
        ge=168,
        le=24 * 365,
    )


class RunDefaults(SettingsGroup):
    title: ClassVar[str] = "Schedule and run defaults"

    schedule: Annotated[str, AfterValidator(_cron)] = setting(
        "0 2 * * *", "cron of the scheduled runs", parse_time=True
    )
    schedule_timezone: Annotated[str, AfterValidator(_timezone)] = setting(
        "Europe/Paris", "time zone of the schedule", parse_time=True
    )
    scheduled_mode: Annotated[Choice, AfterValidator(_one_of(*MODES))] = setting(
        "full", "mode of scheduled runs and the form's default", parse_time=True
    )
    pca_components: int = setting(50, "default K", parse_time=True, ge=1, le=FEATURE_DIM)
    engine: Annotated[Choice, AfterValidator(_one_of(*OFFERED))] = setting(
        DEFAULT_ENGINE, "default inference engine", parse_time=True
    )
    export_features: Annotated[Choice, AfterValidator(_one_of(*EXPORT_CHOICES))] = setting(
        "auto",
        "whether runs write their 1280-d vectors (features/, Parquet and CSV) beside the "
        "feature store: `always`, `never`, or `auto` (modes `mini` and `apples` do, `full` "
        "does not); the form's default",
        parse_time=True,
    )


# The project's own groups; each compute backend adds its own.
PROJECT_GROUPS: tuple[type[SettingsGroup], ...] = (
    CoreSettings,
    StorageSettings,
    FeatureStoreSettings,
    RunDefaults,
)


@dataclass(frozen=True)
class PipelineConfig:
    """The settings of one deployment, by group; defaults describe the reference deployment."""

    groups: Mapping[type[SettingsGroup], SettingsGroup]

    def group(self, kind: type[SettingsGroup]) -> Any:
        return self.groups[kind]

    @property
    def core(self) -> CoreSettings:
        return self.groups[CoreSettings]

    @property
    def storage(self) -> StorageSettings:
        return self.groups[StorageSettings]

    @property
    def store(self) -> FeatureStoreSettings:
        return self.groups[FeatureStoreSettings]

    @property
    def runs(self) -> RunDefaults:
        return self.groups[RunDefaults]

    @property
    def compute(self) -> str:
        return self.core.compute

    @property
    def project_path(self) -> Path:
        return Path(self.core.project_dir)

    @property
    def results_path(self) -> Path:
        """``results_dir``, relative paths taken from the project directory (not the cwd)."""
        return self.project_relative(self.core.results_dir)

    def project_relative(self, path: str) -> Path:
        """A path setting: relative paths are taken from the project directory (not the cwd)."""
        return Path(path) if Path(path).is_absolute() else self.project_path / path

    def replace(self, kind: type[SettingsGroup], **changes: Any) -> PipelineConfig:
        """A copy with some settings of one group changed (not validated again)."""
        return PipelineConfig({**self.groups, kind: self.groups[kind].model_copy(update=changes)})


Groups = Sequence[type[SettingsGroup]]


def setting_fields(groups: Groups) -> Iterator[tuple[type[SettingsGroup], str, Any]]:
    """(group, field name, pydantic FieldInfo) of every setting of the groups."""
    for group in groups:
        for name, info in group.model_fields.items():
            yield group, name, info


def validate_groups(
    values: Mapping[str, Any],
    groups: Groups,
    origins: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """Build and validate the groups from ``{field: raw value}``; missing fields keep their
    defaults. ``origins`` says where each value came from, for the error message;
    ``context`` is what validators need to know of the deployment (the backends' names).
    """
    known = {name for _, name, _ in setting_fields(groups)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown configuration field(s): {', '.join(unknown)}")
    origins = origins or {}
    built: dict[type[SettingsGroup], SettingsGroup] = {}
    for group in groups:
        raw = {name: values[name] for name in group.model_fields if name in values}
        try:
            built[group] = group.model_validate(raw, context=dict(context or {}))
        except ValidationError as error:
            raise _config_error(error, raw, origins) from None
    return PipelineConfig(built)


def _config_error(
    error: ValidationError, raw: Mapping[str, Any], origins: Mapping[str, str]
) -> ConfigError:
    first = error.errors(include_url=False)[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not first["loc"]:  # a check across fields, which names them itself
        return ConfigError(message)
    name = str(first["loc"][0])
    origin = origins.get(name, f"environment variable {env_name(name)}")
    return ConfigError(f"bad {env_name(name)} (from {origin}): {raw.get(name)!r}: {message}")


def collect_values(
    environ: Mapping[str, str],
    names: Iterable[str],
    variable: Callable[[str], str | None] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Pick raw values by precedence Variable > env-backed Variable > ``FRUITS_*`` env.

    ``variable(name)`` looks a Variable up (``None`` when unset); without it only the environment
    is used, ``AIRFLOW_VAR_FRUITS_*`` included. Blank values count as unset, so a compose file can
    pass an empty setting through without overriding the default.
    """
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    for name in names:
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


def is_parse_time(info: Any) -> bool:
    """Whether a setting is read when the DAG file is parsed (environment only)."""
    return bool((info.json_schema_extra or {}).get("parse_time"))


def settings_table(groups: Groups) -> str:
    """The README's settings tables (Markdown), one per group, from the fields themselves."""
    lines: list[str] = []
    for group in groups:
        lines += [f"**{group.title}**", "", "| environment variable | default | what |"]
        lines.append("| --- | --- | --- |")
        for name, info in group.model_fields.items():
            default = info.default
            if name == "project_dir":
                default = "this repository"
            elif isinstance(default, bool):
                default = str(default).lower()
            shown = f"`{default}`" if default not in ("", None) else "empty"
            when = " (read when the DAG file is parsed)" if is_parse_time(info) else ""
            lines.append(f"| `{env_name(name)}` | {shown} | {info.description}{when} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
