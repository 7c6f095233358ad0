"""Where a run reads and writes: S3 keys and URIs, pure functions of config, mode and run key.

Layout (``<x>`` are config prefixes)::

    s3://<bucket>/<input_prefix>/Training/<class>/<image>      input
    s3://<bucket>/<output_prefix>/<mode>/<run_key>/             this run's outputs
    s3://<bucket>/<artifacts_prefix>/<run_key>/<file>           code, bootstrap, weights of the run
    s3://<bucket>/<log_prefix>/                                 EMR LogUri
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from fruits_features.config import PipelineConfig

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
APPLE_CLASS_PREFIX = "Apple"

ENTRY_POINT_NAME = "process_fruits_data.py"
JOB_ZIP_NAME = "fruits_job.zip"
BOOTSTRAP_NAME = "install_dependencies.sh"
REQUIREMENTS_NAME = "requirements-emr.txt"  # the bootstrap's argument
WEIGHTS_NAME = "mobilenet_v2_1.0_224_no_top.weights.h5"
ARTIFACT_NAMES = (ENTRY_POINT_NAME, JOB_ZIP_NAME, BOOTSTRAP_NAME, REQUIREMENTS_NAME, WEIGHTS_NAME)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_key(run_id: str) -> str:
    """Airflow run id made safe as one S3 key segment and folder name ([A-Za-z0-9._-])."""
    key = _UNSAFE.sub("_", run_id).strip("._")
    if not key:
        raise ValueError(f"run id {run_id!r} has no usable character for a run key")
    return key


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    match = re.fullmatch(r"s3a?://([^/]+)/?(.*)", uri)
    if not match:
        raise ValueError(f"not an S3 URI: {uri!r}")
    return match.group(1), match.group(2)


def training_prefix(config: PipelineConfig) -> str:
    return f"{config.input_prefix}/Training/"


def listing_prefix(config: PipelineConfig, mode: str) -> str:
    """Narrowest S3 prefix holding the images a mode may select (S3 filters by prefix)."""
    if mode in ("mini", "apples"):
        return training_prefix(config) + APPLE_CLASS_PREFIX
    return training_prefix(config)


def image_class(key: str, config: PipelineConfig) -> str | None:
    """Class of a training image key (the folder holding it, as the job labels it), else None.

    Files directly in ``Training/`` and non-image files have no class.
    """
    prefix = training_prefix(config)
    if not key.startswith(prefix) or not key.lower().endswith(IMAGE_SUFFIXES):
        return None
    parts = key[len(prefix) :].split("/")
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        return None
    return parts[-2]


def mode_selects_class(mode: str, class_name: str) -> bool:
    return mode == "full" or class_name.startswith(APPLE_CLASS_PREFIX)


@dataclass(frozen=True)
class RunLayout:
    """Keys and URIs of one run."""

    bucket: str
    mode: str
    run_key: str
    input_prefix: str
    output_prefix: str  # "<output_prefix>/<mode>/<run_key>/"
    artifacts_prefix: str  # "<artifacts_prefix>/<run_key>/"
    log_prefix: str  # "<log_prefix>/"

    @property
    def input_uri(self) -> str:
        """The folder holding ``Training/`` (the job's ``--input``)."""
        return s3_uri(self.bucket, self.input_prefix)

    @property
    def output_uri(self) -> str:
        """The job's ``--output`` (no trailing slash)."""
        return s3_uri(self.bucket, self.output_prefix.rstrip("/"))

    @property
    def pca_uri(self) -> str:
        return s3_uri(self.bucket, self.output_prefix + "pca/parquet/")

    @property
    def log_uri(self) -> str:
        return s3_uri(self.bucket, self.log_prefix)

    def artifact_key(self, name: str) -> str:
        return self.artifacts_prefix + name

    def artifact_uri(self, name: str) -> str:
        return s3_uri(self.bucket, self.artifact_key(name))


def run_layout(config: PipelineConfig, mode: str, key: str) -> RunLayout:
    return RunLayout(
        bucket=config.bucket,
        mode=mode,
        run_key=key,
        input_prefix=config.input_prefix,
        output_prefix=f"{config.output_prefix}/{mode}/{key}/",
        artifacts_prefix=f"{config.artifacts_prefix}/{key}/",
        log_prefix=f"{config.log_prefix}/",
    )


def step_log_uri(log_uri: str, cluster_id: str, step_id: str) -> str:
    """Where EMR writes a step's logs: ``<LogUri><cluster id>/steps/<step id>/``."""
    base = log_uri if log_uri.endswith("/") else log_uri + "/"
    return f"{base}{cluster_id}/steps/{step_id}/"


def relative_key(key: str, prefix: str) -> PurePosixPath:
    """Path of ``key`` below ``prefix``; refuses keys that would escape the target folder."""
    if not key.startswith(prefix):
        raise ValueError(f"key {key!r} is not under {prefix!r}")
    rel = PurePosixPath(key[len(prefix) :])
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError(f"unsafe key {key!r} under {prefix!r}")
    return rel
