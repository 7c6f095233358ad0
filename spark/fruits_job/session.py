"""The job's Spark session, and the versions of what it runs on (for model_info)."""

from __future__ import annotations

import platform
from importlib import metadata

from pyspark import SparkConf
from pyspark.sql import SparkSession

from fruits_contract.job_request import JOB_NAME

# Arrow batches of 256 rows, inferred in chunks of --batch-size: bigger Arrow
# batches only add memory (measured: 4.6 GB per worker for 256-image calls).
SPARK_DEFAULTS = {
    "spark.sql.execution.arrow.maxRecordsPerBatch": "256",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # A photo is ~5 KB: at the default 4 MB "open cost" a file scan packs 32 files per
    # task, and listing 67,692 photos ran ~2,100 tasks. 256 KB packs ~500.
    "spark.sql.files.openCostInBytes": "262144",
    # Listing many folders or files (the bank's classes, a warm run's new photos) runs a
    # Spark job of one task per path by default; a few tasks of many paths each suffice.
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "16",
    # The feature store is a Delta Lake table (the jars: EMR's own, or requirements-jvm.txt).
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


# Delta rebuilds a table's state from its log in this many tasks (50 by default): a few
# small files for this table. One per core: the lookup of a local run 4.4 → 1.8 s.
SNAPSHOT_PARTITIONS = "spark.databricks.delta.snapshotPartitions"

# Spark shuffles into 200 partitions whatever the data, and adaptive execution does not
# coalesce the shuffles inside a cached DataFrame (the selection, the features): a 12-image
# run spent 10 s in 200-task stages, while 100M images (5 KB of features each) would make
# 2.5 GB partitions. About 100 MB of features per partition, at least one per core.
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
ROWS_PER_SHUFFLE_PARTITION = 20_000


def build_session() -> SparkSession:
    builder = SparkSession.builder.appName(JOB_NAME)
    submitted = SparkConf()  # what spark-submit / spark-defaults set wins
    for key, value in SPARK_DEFAULTS.items():
        if not submitted.contains(key):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if not submitted.contains(SNAPSHOT_PARTITIONS):
        spark.conf.set(SNAPSHOT_PARTITIONS, str(spark.sparkContext.defaultParallelism))
    return spark


def size_shuffles(spark: SparkSession, rows: int) -> int:
    """Shuffle partitions for a run over ``rows`` files (what spark-submit sets wins)."""
    if SparkConf().contains(SHUFFLE_PARTITIONS):
        return int(spark.conf.get(SHUFFLE_PARTITIONS))
    cores = spark.sparkContext.defaultParallelism
    partitions = max(cores, -(-rows // ROWS_PER_SHUFFLE_PARTITION))
    spark.conf.set(SHUFFLE_PARTITIONS, str(partitions))
    return partitions


def versions(spark: SparkSession) -> dict[str, str]:
    """Versions of Python, Spark, the BLAS/LAPACK netlib runs on, and the job's libraries."""

    def version(*names: str) -> str:
        for name in names:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return "not installed"

    # Which BLAS/LAPACK MLlib's netlib runs on the driver (native, or its pure-Java fallback).
    netlib = spark.sparkContext._jvm.dev.ludovic.netlib
    implementations = {
        "netlib_blas": netlib.blas.BLAS.getInstance(),
        "netlib_lapack": netlib.lapack.LAPACK.getInstance(),
    }
    return {
        "python": platform.python_version(),
        "spark": spark.version,
        **{name: impl.getClass().getSimpleName() for name, impl in implementations.items()},
        "tensorflow": version("tensorflow-cpu", "tensorflow"),
        "onnxruntime": version("onnxruntime"),
        "openvino": version("openvino"),
        "tf2onnx": version("tf2onnx"),
        "pillow": version("pillow"),
        "numpy": version("numpy"),
        "pandas": version("pandas"),
        "pyarrow": version("pyarrow"),
    }
