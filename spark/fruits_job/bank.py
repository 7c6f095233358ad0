"""Extract: where the run reads and writes, and the files of the bank it lists, selects and
skips. Every check that can fail on bad input runs here, before any model is built.

The bank is listed once (listing.py), written as the run's ``listing/`` table and read from
it; the selection is Spark's (selection.py). What reaches the driver is counts and, for
the log, the first few skipped files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_contract import outputs
from fruits_contract.job_request import JobRequest, too_few_images
from fruits_contract.modes import MODES
from fruits_job import storage
from fruits_job.listing import inventory_listing, spark_listing
from fruits_job.progress import StageTimer
from fruits_job.selection import select
from fruits_job.session import size_shuffles
from fruits_job.writers import NAMED_IN_LOG

log = logging.getLogger("fruits_job")


class JobInputError(ValueError):
    """Bad input or arguments: reported as one line, exit code 2."""


@dataclass(frozen=True)
class BankPaths:
    """Where a listed file lives in the bank: the job may read a copy (``--input-as``)."""

    root: str  # where the job reads
    bank: str  # where the files really live

    def __call__(self, path: str) -> str:
        if path == self.root or path.startswith(self.root + "/"):
            return self.bank + path[len(self.root) :]
        return path

    def in_bank(self, column: Column) -> Column:
        """The same mapping, on a column of paths."""
        if self.root == self.bank:
            return column
        inside = column.startswith(self.root + "/") | (column == self.root)
        moved = F.concat(F.lit(self.bank), F.substring(column, len(self.root) + 1, 1 << 30))
        return F.when(inside, moved).otherwise(column)

    def to_source(self, column: Column) -> Column:
        """Where the job reads a file the bank names."""
        return BankPaths(self.bank, self.root).in_bank(column)


@dataclass(frozen=True)
class RunPaths:
    """The run's locations, qualified (``file:/...`` for local paths)."""

    input_root: str
    output: str
    weights: str
    # What the outputs and messages name: the bank, not a copy.
    in_bank: BankPaths

    @property
    def training(self) -> str:
        return f"{self.input_root}/Training"

    @classmethod
    def checked(cls, spark: SparkSession, request: JobRequest) -> RunPaths:
        """The request's locations; refuses an output prefix in use, missing weights or
        a bank without Training/."""
        output = storage.qualify(spark, request.output_uri).rstrip("/")
        input_root = storage.qualify(spark, request.input_uri).rstrip("/")
        bank = (request.input_as or input_root).rstrip("/")
        paths = cls(
            input_root=input_root,
            output=output,
            weights=storage.qualify(spark, request.weights_uri),
            in_bank=BankPaths(input_root, bank),
        )
        if storage.is_non_empty_dir(spark, output):
            raise JobInputError(f"output {output} already holds files; each run needs a new prefix")
        if not storage.exists(spark, paths.weights):
            raise JobInputError(f"weights file not found: {paths.weights}")
        if not request.inventory and not storage.exists(spark, paths.training):
            raise JobInputError(f"no Training/ folder under {input_root}")
        return paths


@dataclass(frozen=True)
class Bank:
    """What the run found in the bank: the images it processes (path in the bank, source
    where the job reads it, label, bytes, modified) and the files it skips (path, label,
    bytes, reason), cached on the executors, with their counts."""

    images: DataFrame
    skipped: DataFrame
    files_listed: int
    image_count: int
    skipped_count: int
    class_count: int

    def check_enough(self, mode: str, k: int, training: str) -> None:
        """Refuse a run whose images cannot make a K-component PCA."""
        if self.image_count == 0:
            raise JobInputError(f"no images for mode {mode!r} under {training}")
        problem = too_few_images(self.image_count, k)
        if problem:
            raise JobInputError(problem)

    def release(self) -> None:
        self.images.unpersist()
        self.skipped.unpersist()


def list_and_select(spark: SparkSession, paths: RunPaths, request: JobRequest) -> Bank:
    """List the bank once into the run's ``listing/`` table, then select from it."""
    mode = MODES[request.mode]
    try:
        if request.inventory:
            listing = inventory_listing(spark, request.inventory, paths.training, mode)
        else:
            listing = spark_listing(spark, paths.training, mode)
    except ValueError as error:
        raise JobInputError(str(error)) from None
    table = f"{paths.output}/{outputs.LISTING}/{outputs.PARQUET}"
    in_bank = paths.in_bank
    listing.withColumn("path", in_bank.in_bank(F.col("path"))).write.parquet(table)
    files_listed = spark.read.parquet(table).count()
    size_shuffles(spark, files_listed)
    selection = select(spark.read.parquet(table), in_bank(paths.training), mode, request.limit)
    images = selection.images.withColumn("source", in_bank.to_source(F.col("path")))
    images = images.persist(StorageLevel.MEMORY_AND_DISK)
    skipped = selection.skipped.persist(StorageLevel.MEMORY_AND_DISK)
    bank = Bank(
        images=images,
        skipped=skipped,
        files_listed=files_listed,
        image_count=images.count(),
        skipped_count=skipped.count(),
        class_count=images.select("label").distinct().count(),
    )
    selection.classified.unpersist()  # both are cached now
    return bank


def read_bank(spark: SparkSession, paths: RunPaths, request: JobRequest, timer: StageTimer) -> Bank:
    """List the mode's class folders and select the run's images (the ``list`` stage); name
    the first skipped files; refuse a run its images cannot make."""
    with timer.stage("list"):
        bank = list_and_select(spark, paths, request)
    for row in bank.skipped.orderBy("path").limit(NAMED_IN_LOG).collect():
        log.warning("skipping %s: %s", row.path, row.reason)
    if bank.skipped_count > NAMED_IN_LOG:
        log.warning(
            "... and %d more skipped files, listed in %s/",
            bank.skipped_count - NAMED_IN_LOG,
            outputs.SKIPPED,
        )
    training = paths.in_bank(paths.training)
    bank.check_enough(request.mode, request.pca_components, training)
    log.info(
        "run %s: mode %s, %d images of %d classes selected from %d files under %s",
        request.run_id,
        request.mode,
        bank.image_count,
        bank.class_count,
        bank.files_listed,
        training,
    )
    return bank
