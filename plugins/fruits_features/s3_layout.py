"""Where a run reads and writes: S3 keys and URIs, pure functions of config, mode and run key.

Layout (``<x>`` are config prefixes)::

    s3://<bucket>/<input_prefix>/Training/<class>/<image>      input
    s3://<bucket>/<output_prefix>/<mode>/<run_key>/             this run's outputs
    s3://<bucket>/<output_prefix>/<mode>/_last_success.json     what the last success ran on
    s3://<bucket>/<artifacts_prefix>/<run_key>/<file>           code, bootstrap, weights of the run
    s3://<bucket>/<feature_store_prefix>/                       the feature store (a Delta table)

The layout below a run's output prefix is in ``output_layout``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fruits_contract import outputs
from fruits_contract.engines import OFFERED
from fruits_contract.modes import MODES
from fruits_features.config import PipelineConfig
from fruits_features.output_layout import REPORT

ENTRY_POINT_NAME = "process_fruits_data.py"
MAINTENANCE_ENTRY_NAME = "maintain_feature_store.py"
JOB_ZIP_NAME = "fruits_job.zip"
BOOTSTRAP_NAME = "install_dependencies.sh"
# The bootstrap's arguments: what the master (driver) and the core nodes (workers) install.
DRIVER_REQUIREMENTS_NAME = "requirements-emr-driver.txt"
WEIGHTS_NAME = "mobilenet_v2_1.0_224_no_top.weights.h5"


def worker_requirements_name(engine: str) -> str:
    return f"requirements-emr-worker-{engine}.txt"


ARTIFACT_NAMES = (
    ENTRY_POINT_NAME,
    MAINTENANCE_ENTRY_NAME,
    JOB_ZIP_NAME,
    BOOTSTRAP_NAME,
    DRIVER_REQUIREMENTS_NAME,
    *(worker_requirements_name(engine) for engine in OFFERED),
    WEIGHTS_NAME,
)

LAST_SUCCESS_NAME = "_last_success.json"
REPORT_PAGE = "report.html"
# Beside the mode's runs: which run and deployment each run prefix belongs to.
CLAIMS_FOLDER = "_claims"

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


def training_relative(key: str, input_prefix: str) -> str | None:
    """A key's path below ``<input_prefix>/Training/`` (None: the key is not under it)."""
    prefix = f"{input_prefix.strip('/')}/Training/"
    return key[len(prefix) :] if key.startswith(prefix) and len(key) > len(prefix) else None


@dataclass(frozen=True)
class RunLayout:
    """Keys and URIs of one run."""

    bucket: str
    mode: str
    run_key: str
    input_prefix: str
    output_prefix: str  # "<output_prefix>/<mode>/<run_key>/"
    artifacts_prefix: str  # "<artifacts_prefix>/<run_key>/"
    feature_store_prefix: str

    @property
    def input_uri(self) -> str:
        """The folder holding ``Training/`` (the job's ``--input``)."""
        return s3_uri(self.bucket, self.input_prefix)

    @property
    def listing_prefix(self) -> str:
        """Narrowest S3 prefix holding the images the mode may select (S3 filters by prefix)."""
        return f"{self.input_prefix}/Training/{MODES[self.mode].class_prefix}"

    @property
    def output_uri(self) -> str:
        """The job's ``--output`` (no trailing slash)."""
        return s3_uri(self.bucket, self.output_prefix.rstrip("/"))

    @property
    def feature_store_uri(self) -> str:
        return s3_uri(self.bucket, self.feature_store_prefix)

    @property
    def maintenance_key(self) -> str:
        """The feature store's record of its last maintenance (or of its table's creation)."""
        return f"{self.feature_store_prefix}/{outputs.STORE_MAINTENANCE}"

    @property
    def maintenance_uri(self) -> str:
        """Where this run's maintenance of the feature store records what it did."""
        return s3_uri(self.bucket, f"{self.feature_store_prefix}/maintenance/{self.run_key}")

    @property
    def claim_key(self) -> str:
        """Who writes this run's prefix: made once, by a conditional write (input_check)."""
        mode_prefix, key = self.output_prefix.rstrip("/").rsplit("/", 1)
        return f"{mode_prefix}/{CLAIMS_FOLDER}/{key}.json"

    @property
    def overdue_key(self) -> str:
        """Made once, by a conditional write, when the run's job is announced overdue."""
        return self.claim_key.removesuffix(".json") + ".overdue.json"

    @property
    def last_success_key(self) -> str:
        """The mode's record of its last successful run (``run_identity``), beside its runs."""
        mode_prefix = self.output_prefix.rstrip("/").rsplit("/", 1)[0]
        return f"{mode_prefix}/{LAST_SUCCESS_NAME}"

    @property
    def pca_uri(self) -> str:
        return s3_uri(self.bucket, f"{self.output_prefix}{outputs.PCA}/{outputs.PARQUET}/")

    @property
    def report_prefix(self) -> str:
        return f"{self.output_prefix}{REPORT}/"

    @property
    def report_uri(self) -> str:
        """The run's report page on S3 (the failed run's too)."""
        return s3_uri(self.bucket, f"{self.report_prefix}{REPORT_PAGE}")

    def artifact_key(self, name: str) -> str:
        return self.artifacts_prefix + name

    def artifact_uri(self, name: str) -> str:
        return s3_uri(self.bucket, self.artifact_key(name))


def run_layout(config: PipelineConfig, mode: str, key: str) -> RunLayout:
    storage = config.storage
    return RunLayout(
        bucket=storage.bucket,
        mode=mode,
        run_key=key,
        input_prefix=storage.input_prefix,
        output_prefix=f"{storage.output_prefix}/{mode}/{key}/",
        artifacts_prefix=f"{storage.artifacts_prefix}/{key}/",
        feature_store_prefix=config.store.feature_store_prefix,
    )
