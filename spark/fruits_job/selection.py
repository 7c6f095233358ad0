"""Which files of the listing a run processes, decided in Spark: the input rule on every
path, the mode's classes, and its cap (a deterministic subset, round-robin over the classes).

Nothing of per-file size reaches the driver: the rule runs in the Python workers (one rule,
fruits_contract.input_rule), the cap is a window over a stable key per class, and the driver
learns two numbers of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType, StructField, StructType

from fruits_contract import outputs
from fruits_contract.input_rule import classify
from fruits_contract.modes import Mode

# A DataType, not a DDL string: parsing one needs a live session, and this module is
# imported where none runs (the Airflow side's tests import the job's parser).
CLASSIFIED = StructType([StructField("label", StringType()), StructField("reason", StringType())])


@pandas_udf(CLASSIFIED)
def _classify(relatives: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
    """The input rule on each path below Training/: (label, None) or (label, why skipped)."""
    for batch in relatives:
        answers = [classify(relative) for relative in batch]
        yield pd.DataFrame(answers, columns=["label", "reason"])


@dataclass(frozen=True)
class Selection:
    """The images a run processes (path, label, bytes, modified) and the files it skips
    (path, label, bytes, reason), as DataFrames over the run's listing."""

    images: DataFrame
    skipped: DataFrame
    classified: DataFrame  # every listed file, its label and reason: cached, both read it


def classified(listing: DataFrame, training: str) -> DataFrame:
    """The listing with each file's label and, for a file the run does not process, why."""
    root = training.rstrip("/") + "/"
    relative = F.substring(F.col("path"), len(root) + 1, 1 << 30)
    return listing.withColumn("rule", _classify(relative)).select(
        "path", "bytes", "modified", "rule.label", "rule.reason"
    )


def stable_key() -> F.Column:
    """A file's place in its class, the same on S3 and on a copy: SHA-1 of class/file name."""
    name = F.substring_index(F.col("path"), "/", -1)
    return F.sha1(F.concat(F.col("label"), F.lit("/"), name))


def capped(images: DataFrame, cap: int) -> DataFrame:
    """The first ``cap`` images of a round-robin over the classes (sorted by name), each
    class in the order of its stable key: any prefix is spread evenly over the classes.

    In Spark: each image's depth in its class (a window per class), the depth where the
    cap falls (from the count at each depth, at most ``cap`` rows), then the classes that
    still fit at that depth.
    """
    by_class = Window.partitionBy("label").orderBy(stable_key())
    ranked = images.withColumn("depth", F.row_number().over(by_class) - 1)
    ranked = ranked.where(F.col("depth") < cap)
    counts = ranked.groupBy("depth").count()
    before = F.sum("count").over(Window.orderBy("depth").rowsBetween(Window.unboundedPreceding, -1))
    edge = (
        counts.withColumn("before", F.coalesce(before, F.lit(0)))
        .where(F.col("before") + F.col("count") >= cap)
        .orderBy("depth")
        .select("depth", "before")
        .first()
    )
    if edge is None:  # fewer images than the cap: every one
        return ranked.drop("depth")
    lane = F.row_number().over(Window.partitionBy("depth").orderBy("label")) - 1
    last = (F.col("depth") == edge["depth"]) & (F.col("lane") < cap - edge["before"])
    return (
        ranked.withColumn("lane", lane)
        .where((F.col("depth") < edge["depth"]) | last)
        .drop("depth", "lane")
    )


def select(listing: DataFrame, training: str, mode: Mode, limit: int | None) -> Selection:
    """The run's images and skipped files, from its listing of the mode's class folders."""
    files = classified(listing, training).persist(StorageLevel.MEMORY_AND_DISK)
    images = files.where(F.col("reason").isNull() & F.col("label").startswith(mode.class_prefix))
    images = images.select("path", "label", "bytes", "modified")
    cap = mode.cap(limit)
    if cap is not None:
        images = capped(images, cap)
    skipped = files.where(F.col("reason").isNotNull())
    skipped = skipped.withColumn("label", F.coalesce("label", F.lit(""))).select(
        *outputs.SKIPPED_COLUMNS
    )
    return Selection(images, skipped, files)
