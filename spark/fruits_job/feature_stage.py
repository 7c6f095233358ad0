"""Transform, first half: every selected image's features or error, taken from the feature
store when it holds them, computed by the pandas UDF (``features.py``) otherwise."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_job.bank import Bank
from fruits_job.feature_store import FeatureStore
from fruits_job.features import make_feature_udf
from fruits_job.inference_model import Model
from fruits_job.listing import read_images, read_roots
from fruits_job.preprocess import EMPTY_FILE
from fruits_job.progress import ProgressReporter
from fruits_job.selection import Image

log = logging.getLogger("fruits_job")

# At most this many images per feature task: the progress log (fed as tasks end) moves
# every few seconds, and a lost task costs little to redo.
IMAGES_PER_TASK = 1000

ROWS_SCHEMA = (
    "path string, label string, bytes long, modified long, features array<float>, "
    "error string, reused boolean"
)
IMAGES_SCHEMA = "local_path string, path string, label string, bytes long, modified long"


def feature_partitions(images: int, parallelism: int, per_task: int = IMAGES_PER_TASK) -> int:
    """Tasks of the feature stage: a multiple of the cores, so the last wave leaves no core
    idle, each of at most ``per_task`` images."""
    return parallelism * max(1, math.ceil(images / (parallelism * per_task)))


@dataclass
class FeatureTable:
    """Every selected image's features or error: path (in the bank), label, bytes,
    modified, features, error, reused; and how many were computed and reused.

    The computed rows are cached (computed once; the outputs, the store and the PCA read
    them). The reused ones are read from the store's Parquet where used (four passes:
    features Parquet and CSV, covariance, projection), not cached: the workers hold no
    copy of a big bank's vectors, and the feature stage does only the feature work.
    """

    rows: DataFrame
    computed: int
    reused: int
    partitions: int
    cached: DataFrame | None = None

    @property
    def features(self) -> DataFrame:
        """path, label, features of the images that have features."""
        return self.rows.filter(F.col("error").isNull()).select("path", "label", "features")

    @property
    def fresh(self) -> DataFrame:
        """The rows this run computed features for: what the store gains."""
        return self.rows.filter(~F.col("reused") & F.col("error").isNull())

    def release(self) -> None:
        if self.cached is not None:
            self.cached.unpersist()


def readable_images(bank: Bank) -> tuple[list[Image], pd.DataFrame]:
    """The selected images with bytes to read, and a frame of them: where the job reads each
    (local_path) and where it lives in the bank (path), label, bytes, modified."""
    readable = [image for image in bank.images if image.size > 0]
    frame = pd.DataFrame(
        {
            "local_path": pd.array([i.path for i in readable], dtype="string"),
            "path": pd.array([bank.in_bank(i.path) for i in readable], dtype="string"),
            "label": pd.array([i.label for i in readable], dtype="string"),
            "bytes": pd.array([i.size for i in readable], dtype="int64"),
            "modified": pd.array([i.modified for i in readable], dtype="int64"),
        }
    )
    return readable, frame


def stored_rows(stored: DataFrame) -> DataFrame:
    """Rows of the store's features, as the feature table holds them."""
    return stored.select(
        "path",
        "label",
        "bytes",
        "modified",
        "features",
        F.lit(None).cast("string").alias("error"),
        F.lit(True).alias("reused"),
    )


def compute_features(
    spark: SparkSession,
    bank: Bank,
    images: tuple[list[Image], pd.DataFrame],
    model: Model,
    partitions: int,
    progress: ProgressReporter,
) -> DataFrame:
    """Read and infer the images (a list and its frame), cached: the stage waits for them."""
    to_compute, frame = images
    # Through Arrow (pandas): ~10x faster than a list of tuples for 67,692 rows.
    computing = spark.createDataFrame(frame, IMAGES_SCHEMA)
    content = (
        read_images(spark, read_roots(to_compute, bank.listed, bank.training))
        .withColumnRenamed("path", "local_path")
        .drop("bytes")
        .join(F.broadcast(computing), "local_path")
        # Merge the many small file partitions without a shuffle: one model per worker,
        # and tasks small enough for the progress log.
        .coalesce(partitions)
    )
    done = spark.sparkContext.accumulator(0)
    udf = make_feature_udf(model.settings, spark.sparkContext.broadcast(model.graph), done)
    progress.track_images(done, len(to_compute))
    cached = (
        content.select("path", "label", "bytes", "modified", udf("content").alias("r"))
        .select(
            "path",
            "label",
            "bytes",
            "modified",
            "r.features",
            "r.error",
            F.lit(False).alias("reused"),
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    cached.count()
    progress.track_images(None)
    return cached


def extract_features(
    spark: SparkSession,
    bank: Bank,
    model: Model,
    store: FeatureStore | None,
    progress: ProgressReporter,
    partitions: int | None = None,
) -> FeatureTable:
    """Features of the selected images: from the store when it holds them, else computed."""
    readable, images = readable_images(bank)
    frames = []
    reused: set[str] = set()
    if store is not None:
        reused, stored = store.lookup(images.drop(columns="local_path"))
        if stored is not None:
            frames.append(stored_rows(stored))
    new = ~images["path"].isin(reused)
    to_compute = [image for image, is_new in zip(readable, new, strict=True) if is_new]
    partitions = partitions or feature_partitions(
        len(to_compute), spark.sparkContext.defaultParallelism
    )
    if store is not None:
        log.info(
            "feature store %s: %d of %d images found, %d to compute",
            store.root,
            len(reused),
            len(readable),
            len(to_compute),
        )
    cached = None
    if to_compute:
        cached = compute_features(
            spark, bank, (to_compute, images[new]), model, partitions, progress
        )
        frames.append(cached)
    # Spark's file scans never return zero-length files: report them from the listing.
    empty = [
        (bank.in_bank(i.path), i.label, 0, i.modified, None, EMPTY_FILE, False)
        for i in bank.images
        if i.size == 0
    ]
    if empty or not frames:
        frames.append(spark.createDataFrame(empty, ROWS_SCHEMA))
    rows = frames[0]
    for frame in frames[1:]:
        rows = rows.unionByName(frame)
    return FeatureTable(rows, len(to_compute), len(reused), partitions, cached)
