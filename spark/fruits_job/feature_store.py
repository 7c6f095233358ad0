"""The feature store: a Delta Lake table of every feature a run computed, reused by later runs.

Layout under the store's URI (``--feature-store``; s3:// on EMR, a folder locally)::

    <store>/features/                   the Delta table, partitioned by fingerprint
    <store>/fingerprints/<id>.json      what each fingerprint id stands for
    <store>/_writer_lock/               one writer at a time (writer_lock.py)

A row is the features of one version of one image under one model: ``fingerprint``,
``path`` (the image's URI in the bank), ``bytes`` and ``modified`` (its size and time as
listed), ``features``, and the ``run_id`` and ``computed_at`` of the run that computed it.
Those four columns are the key. A run reads the table at one version (its lookup is a join
in Spark: wanted images against the stored keys, in the files Delta Kernel lists for its
fingerprint, ``store_files``), computes the images it lacks, and merges
them in (``MERGE``: insert what is not matched) as soon as its feature stage ends, so a
later failure keeps them. Errors are never stored: a broken image is tried again by the
next run. A modified image (new size or time) is another key: computed again; its old row
stays, as do the rows of deleted images, because earlier runs' features are the table's
rows of their images (``model_info.json`` records the version each run read and wrote).
``OPTIMIZE`` compacts the small files nightly merges leave, ``VACUUM`` deletes the files no
version within the retention uses (``maintenance.py``).

The fingerprint is a digest of what shapes the numbers: the weights, the engine and its
library versions, the image size, Pillow's and numpy's versions, and the source of the
job's preprocessing, feature and export code (``code_digest``): any change to one of them
starts cold, under a new fingerprint, with no constant to bump by hand.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_contract import outputs
from fruits_contract.engines import ENGINES, FEATURE_DIM
from fruits_contract.job_request import JobRequest
from fruits_job import storage, store_files
from fruits_job.code_digest import code_digest
from fruits_job.writer_lock import WriterLock

log = logging.getLogger("fruits_job")

TABLE, FINGERPRINTS, LOCK = outputs.STORE_TABLE, "fingerprints", "_writer_lock"
KEY = ("path", "bytes", "modified")
TABLE_SCHEMA = (
    "fingerprint string, path string, bytes long, modified long, features array<float>, "
    "run_id string, computed_at timestamp"
)
STORED_SCHEMA = "path string, bytes long, modified long, features array<float>"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def shaping_versions(engine: str) -> dict[str, str]:
    """Versions of the libraries that decode, export and infer: the engine's, Pillow, numpy."""
    spec = ENGINES[engine]
    modules = {"PIL": "pillow", "numpy": "numpy", "tensorflow": "tensorflow-cpu"}
    names = [
        modules.get(m, m) for m in ("PIL", "numpy", *spec.driver_modules, *spec.worker_modules)
    ]
    return {name: _version(name) for name in dict.fromkeys(names)}


@dataclass(frozen=True)
class Fingerprint:
    """Everything that makes two runs' features of the same image the same."""

    weights_sha256: str
    engine: str
    image_size: int
    feature_dim: int = FEATURE_DIM
    code_sha256: str = field(default_factory=code_digest)
    versions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, weights_sha256: str, engine: str, image_size: int) -> Fingerprint:
        versions = tuple(sorted(shaping_versions(engine).items()))
        return cls(weights_sha256, engine, image_size, versions=versions)

    def fields(self) -> dict[str, object]:
        fields = dict(sorted(vars(self).items()))
        fields["versions"] = dict(self.versions)
        return fields

    @property
    def id(self) -> str:
        text = json.dumps(self.fields(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class StoreTable:
    """The store's Delta table as a whole: what exists, its versions and files, its writes."""

    def __init__(self, spark: SparkSession, uri: str) -> None:
        self.spark = spark
        self.root = uri.rstrip("/")
        self.uri = f"{self.root}/{TABLE}"
        self.sql_name = "delta.`{}`".format(self.uri.replace("`", "``"))
        self.lock = WriterLock(f"{self.root}/{LOCK}")

    def exists(self) -> bool:
        return storage.exists(self.spark, f"{self.uri}/_delta_log")

    def current_version(self) -> int | None:
        """The table's newest version; None when there is no table yet."""
        if not self.exists():
            return None
        return int(self.spark.sql(f"DESCRIBE HISTORY {self.sql_name} LIMIT 1").first()[0])

    def describe(self) -> dict[str, Any]:
        """The table's version, and the files and bytes of that version."""
        detail = self.spark.sql(f"DESCRIBE DETAIL {self.sql_name}").first()
        return {
            "version": self.current_version(),
            "files": int(detail["numFiles"]),
            "bytes": int(detail["sizeInBytes"]),
        }

    def create(self, run_id: str) -> None:
        """The table, empty, when it is not there yet (the writer lock held); its maintenance
        record starts the clock of the first maintenance."""
        if not self.exists():
            empty = self.spark.createDataFrame([], TABLE_SCHEMA)
            empty.write.format("delta").partitionBy("fingerprint").mode("ignore").save(self.uri)
            log.info("feature store: created the Delta table %s", self.uri)
            now = datetime.now(UTC).isoformat()
            self.record({"run_id": run_id, "table": self.uri, "created": now, "finished_at": now})

    def record(self, record: dict[str, Any]) -> None:
        """The store's maintenance record: when the last one (or the table's creation) was."""
        text = json.dumps(record, indent=2, sort_keys=True) + "\n"
        # Replaced whole (one PUT on S3): a reader that catches it half written locally only
        # finds the maintenance due again.
        storage.write_text(self.spark, f"{self.root}/{outputs.STORE_MAINTENANCE}", text)

    def read(self, version: int) -> DataFrame:
        return self.spark.read.format("delta").option("versionAsOf", version).load(self.uri)

    def write(self, statement: str, note: str) -> int | None:
        """Run a SQL statement that writes the table, its commit noted with ``note``; the
        version it committed, None when it changed nothing. Hold the writer lock."""
        before = self.current_version()
        self.spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", note)
        try:
            self.spark.sql(statement)
        finally:
            self.spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
        after = self.current_version()
        return after if after != before else None

    def old_segment_stores(self) -> list[str]:
        """Stores of an earlier version (segments and commits, fruits-features 0.1)."""
        return [
            uri
            for uri in storage.list_folders(self.spark, self.root)
            if storage.exists(self.spark, f"{uri}/commits")
        ]


class FeatureStore:
    """One fingerprint's features in the store's table, read at one version (the newest
    when the store is opened)."""

    def __init__(self, spark: SparkSession, uri: str, fingerprint: Fingerprint) -> None:
        self.table = StoreTable(spark, uri)
        self.fingerprint = fingerprint
        self.version = self.table.current_version()
        for old in self.table.old_segment_stores():
            log.warning(
                "feature store: %s is a segment store of an earlier version, whose fingerprint "
                "did not cover the code: it is not read. Delete it to free its space.",
                old,
            )

    def stored(self) -> DataFrame | None:
        """path, bytes, modified, features of this fingerprint, at the version read.

        Its files are listed by Delta Kernel on the driver and read as Parquet (no planning
        jobs over the log: ``store_files``); Delta's Spark reader reads the table when its
        protocol needs more than its files."""
        if self.version is None:
            return None
        spark = self.table.spark
        files = store_files.partition_files(
            spark, self.table.uri, self.version, "fingerprint", self.fingerprint.id
        )
        if files is None:
            table = self.table.read(self.version)
            rows = table.where(F.col("fingerprint") == self.fingerprint.id)
            return rows.select(*KEY, "features")
        if not files:
            return spark.createDataFrame([], STORED_SCHEMA)
        return spark.read.schema(STORED_SCHEMA).parquet(*files)

    def merge(self, rows: DataFrame, run_id: str, refresh: bool = False) -> int | None:
        """Add rows (path, bytes, modified, features) under the writer lock; with ``refresh``
        replace the stored features of the same keys. The version written, None when the
        table already held every row."""
        spark = self.table.spark
        source = rows.select(
            F.lit(self.fingerprint.id).alias("fingerprint"),
            *KEY,
            "features",
            F.lit(run_id).alias("run_id"),
            F.lit(datetime.now(UTC)).alias("computed_at"),
        )
        view = f"fruits_features_new_{uuid.uuid4().hex}"
        source.createOrReplaceTempView(view)
        matched = "WHEN MATCHED THEN UPDATE SET * " if refresh else ""
        on = " AND ".join(f"t.{c} = s.{c}" for c in KEY)
        statement = (
            f"MERGE INTO {self.table.sql_name} AS t USING {view} AS s "
            f"ON t.fingerprint = '{self.fingerprint.id}' AND t.fingerprint = s.fingerprint "
            f"AND {on} {matched}WHEN NOT MATCHED THEN INSERT *"
        )
        try:
            with self.table.lock.held(run_id):
                self.table.create(run_id)
                self._describe_fingerprint()
                return self.table.write(statement, f"fruits-features run {run_id}")
        finally:
            spark.catalog.dropTempView(view)

    def _describe_fingerprint(self) -> None:
        """``fingerprints/<id>.json``: what the id stands for, for people and other readers."""
        spark = self.table.spark
        described = f"{self.table.root}/{FINGERPRINTS}/{self.fingerprint.id}.json"
        if not storage.exists(spark, described):
            text = json.dumps(self.fingerprint.fields(), indent=2, sort_keys=True)
            storage.write_text_atomically(spark, described, text)


def open_store(
    spark: SparkSession, request: JobRequest, weights_sha256: str
) -> FeatureStore | None:
    """The request's feature store at its newest version, for this model; None without one."""
    if not request.feature_store:
        return None
    fingerprint = Fingerprint.of(weights_sha256, request.engine, request.image_size)
    return FeatureStore(spark, storage.qualify(spark, request.feature_store), fingerprint)
