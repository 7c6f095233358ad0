"""The feature store: features of images seen by earlier runs, reused by later ones.

Layout under the store's URI (``--feature-store``; s3:// on EMR, a folder locally)::

    <store>/<fingerprint>/fingerprint.json         what the fingerprint stands for
    <store>/<fingerprint>/segments/<segment>/      Parquet: path, bytes, modified, features
    <store>/<fingerprint>/commits/<segment>.json   one small file, written last

A stored row is reused when the model's fingerprint (weights SHA-256, engine, image size,
preprocessing and export revisions) and the image's bank path, size and modification time
(as Spark lists the file) all match; anything else is computed. A changed model therefore
never reuses, a modified image (new size or time) is recomputed, and a deleted image is
simply not asked for.

Writes are atomic without locks: a run writes the rows it computed to a segment of its own
(a new, unique name) and commits it at the end of a successful run by writing one small
file. Readers only read committed segments, so a failed or killed run leaves an uncommitted
segment nobody reads, and two overlapping runs never touch each other's files. When an
image was stored twice (a recompute, or two runs computing it at once) the newest segment
wins. Errors are never stored: a broken image is tried again by the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_contract.engines import FEATURE_DIM
from fruits_contract.job_request import JobRequest
from fruits_job import storage
from fruits_job.engines import EXPORT_REVISION
from fruits_job.preprocess import PREPROCESS_REVISION

log = logging.getLogger(__name__)

# path is the image's URI in the bank (what the outputs say), never a staged copy's.
KEY_COLUMNS = ("path", "bytes", "modified")
SEGMENT_SCHEMA = "path string, bytes long, modified long, features array<float>"


@dataclass(frozen=True)
class Fingerprint:
    """Everything that makes two runs' features of the same image the same."""

    weights_sha256: str
    engine: str
    image_size: int
    preprocess_revision: int = PREPROCESS_REVISION
    export_revision: int = EXPORT_REVISION
    feature_dim: int = FEATURE_DIM

    def fields(self) -> dict[str, object]:
        return dict(sorted(vars(self).items()))

    @property
    def id(self) -> str:
        text = json.dumps(self.fields(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def new_segment_id(now: datetime | None = None) -> str:
    """Unique, and ordered by creation time: the newest segment wins a duplicate."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:8]}"


class FeatureStore:
    """One fingerprint's part of a store."""

    def __init__(self, spark: SparkSession, uri: str, fingerprint: Fingerprint) -> None:
        self.spark = spark
        self.root = f"{uri.rstrip('/')}/{fingerprint.id}"
        self.fingerprint = fingerprint

    def segment_uri(self, segment: str) -> str:
        return f"{self.root}/segments/{segment}"

    def committed_segments(self) -> list[str]:
        """Names of the committed segments, oldest first."""
        segments = []
        for uri in storage.list_files(self.spark, f"{self.root}/commits"):
            name = uri.rsplit("/", 1)[-1]
            if not name.endswith(".json"):
                continue
            try:
                commit = json.loads(storage.read_text(self.spark, uri))
                segments.append(str(commit["segment"]))
            except (ValueError, KeyError) as error:  # never written by this code: say so
                log.warning("feature store: ignoring unreadable commit %s: %s", uri, error)
        return sorted(segments)

    def lookup(self, wanted: pd.DataFrame) -> tuple[set[str], DataFrame | None]:
        """The ``wanted`` images (path, bytes, modified and any other column) the store
        holds: their paths, and a frame of those rows with their ``features``, each from
        the newest segment holding it (None when there are none). The frame reads the
        store where it is used; nothing is cached."""
        segments = self.committed_segments()
        if not segments:
            return set(), None
        # The schema is known: no job to read it from a footer.
        stored = (
            self.spark.read.schema(SEGMENT_SCHEMA)
            .parquet(*(self.segment_uri(s) for s in segments))
            .withColumn("segment", F.regexp_extract(F.input_file_name(), r"/segments/([^/]+)/", 1))
        )
        # The store's keys alone (Parquet reads no features for them), matched here, where
        # the wanted images already are: one scan, no join in Spark.
        keys = stored.select(*KEY_COLUMNS, "segment").toPandas().astype({"path": "string"})
        matched = keys.merge(wanted.astype({"path": "string"}), on=list(KEY_COLUMNS))
        newest = matched.sort_values("segment").drop_duplicates("path", keep="last")
        if newest.empty:
            return set(), None
        chosen = self.spark.createDataFrame(newest)
        # A broadcast of the chosen keys: a shuffle would move every feature.
        features = (
            stored.select("path", "segment", "features")
            .join(F.broadcast(chosen), ["path", "segment"])
            .drop("segment")
        )
        return set(newest["path"]), features

    def write_segment(self, rows: DataFrame, segment: str) -> None:
        """Rows (path, bytes, modified, features) to a new, not yet committed, segment."""
        rows.select(*KEY_COLUMNS, "features").write.mode("errorifexists").parquet(
            self.segment_uri(segment)
        )

    def commit(self, segment: str, rows: int, run_id: str) -> None:
        """Make a written segment visible to later runs: one small file, written whole."""
        fingerprint_file = f"{self.root}/fingerprint.json"
        if not storage.exists(self.spark, fingerprint_file):
            storage.write_text_atomically(
                self.spark, fingerprint_file, json.dumps(self.fingerprint.fields(), indent=2)
            )
        commit = {
            "segment": segment,
            "rows": rows,
            "run_id": run_id,
            "committed_at": datetime.now(UTC).isoformat(),
        }
        storage.write_text_atomically(
            self.spark, f"{self.root}/commits/{segment}.json", json.dumps(commit, indent=2)
        )


def open_store(
    spark: SparkSession, request: JobRequest, weights_sha256: str
) -> FeatureStore | None:
    """The part of the request's feature store that holds this model's features, if any."""
    if not request.feature_store:
        return None
    fingerprint = Fingerprint(weights_sha256, request.engine, request.image_size)
    return FeatureStore(spark, storage.qualify(spark, request.feature_store), fingerprint)
