"""Transform, first half: every selected image's features or error, taken from the feature
store when it holds them, computed by the pandas UDF (``features.py``) otherwise."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits_job.bank import Bank
from fruits_job.feature_store import KEY, FeatureStore
from fruits_job.features import make_feature_udf
from fruits_job.inference_model import Model
from fruits_job.progress import ProgressReporter

log = logging.getLogger("fruits_job")

# At most this many images per feature task: the progress log (fed as tasks end) moves
# every few seconds, and a lost task costs little to redo.
IMAGES_PER_TASK = 1000


def feature_partitions(images: int, parallelism: int, per_task: int = IMAGES_PER_TASK) -> int:
    """Tasks of the feature stage: a multiple of the cores, so the last wave leaves no core
    idle, each of at most ``per_task`` images."""
    return parallelism * max(1, math.ceil(images / (parallelism * per_task)))


@dataclass
class FeatureTable:
    """Every selected image's features or error: path (in the bank), label, bytes,
    modified, features, error, reused; and how many were computed and reused.

    The computed rows are cached on disk (computed once; the outputs, the store and the PCA read
    them). The reused ones are read from the store's table where used (a join at the
    version the run read), not cached: the workers hold no copy of a big bank's vectors,
    and the feature stage does only the feature work.
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


def compute_features(
    wanted: DataFrame, images: int, model: Model, partitions: int, progress: ProgressReporter
) -> DataFrame:
    """Read and infer the ``images`` wanted images, cached: the stage waits for them."""
    spark = wanted.sparkSession
    done = spark.sparkContext.accumulator(0)
    udf = make_feature_udf(model.settings, spark.sparkContext.broadcast(model.graph), done)
    progress.track_images(done, images)
    cached = (
        # Tasks of at most IMAGES_PER_TASK images, a multiple of the cores: one model per
        # worker, and a progress log that moves.
        wanted.repartition(partitions)
        .select("path", "label", "bytes", "modified", udf("source").alias("r"))
        .select(
            "path",
            "label",
            "bytes",
            "modified",
            "r.features",
            "r.error",
            F.lit(False).alias("reused"),
        )
        # On disk, not in the heap: 5 KB per image (1.5 GB for 300,000) would fill the
        # storage memory the MERGE and the PCA need next (measured: a local run of 300,000
        # images with a 2 GB heap ran out of it in the PCA with MEMORY_AND_DISK).
        .persist(StorageLevel.DISK_ONLY)
    )
    cached.count()
    progress.track_images(None)
    return cached


def missing(wanted: DataFrame, stored: DataFrame) -> DataFrame:
    """The wanted images whose key (path, bytes, modified) the store lacks: a join in Spark,
    adaptive, nothing of per-image size on the driver."""
    return wanted.join(stored.select(*KEY), list(KEY), "left_anti")


def reused_rows(wanted: DataFrame, stored: DataFrame) -> DataFrame:
    """The wanted images the store holds, with their stored features (read where used)."""
    return wanted.join(stored, list(KEY)).select(
        "path",
        "label",
        "bytes",
        "modified",
        "features",
        F.lit(None).cast("string").alias("error"),
        F.lit(True).alias("reused"),
    )


def extract_features(
    bank: Bank,
    model: Model,
    store: FeatureStore | None,
    progress: ProgressReporter,
    partitions: int | None = None,
) -> FeatureTable:
    """Features of the selected images: from the store when it holds them, else computed.

    The lookup is a join in Spark: the images to compute are the wanted ones whose key the
    store lacks; only their count reaches the driver.
    """
    wanted = bank.images
    spark = wanted.sparkSession
    stored = None if store is None else store.stored()
    to_compute = wanted if stored is None else missing(wanted, stored)
    computing = to_compute.count()
    reused = bank.image_count - computing
    partitions = partitions or feature_partitions(computing, spark.sparkContext.defaultParallelism)
    if store is not None:
        log.info(
            "feature store %s (version %s): %d of %d images found, %d to compute",
            store.table.uri,
            store.version,
            reused,
            bank.image_count,
            computing,
        )
    frames = [] if stored is None or not reused else [reused_rows(wanted, stored)]
    cached = None
    if computing or not frames:
        cached = compute_features(to_compute, computing, model, partitions, progress)
        frames.append(cached)
    rows = frames[0]
    for frame in frames[1:]:
        rows = rows.unionByName(frame)
    return FeatureTable(rows, computing, reused, partitions, cached)
