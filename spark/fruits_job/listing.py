"""Listing the bank, through Spark's file source.

The listing is Spark's own (binaryFile without its content column lists files, in parallel on
a cluster, and reads no bytes), completed with the zero-length files its scans skip (the
file index knows them). It never shows hidden-looking names (Hadoop leaves out names
starting with ``_`` or ``.``): the caller that lists the bank itself (the DAG, on S3) hands
those to the job (``--also-skipped``), so the run still reports every file. Listing them
here through Hadoop would cost a round trip per file, and Hadoop's glob fails on a name
holding ':' on a local disk. The images themselves are read by the feature UDF, by path.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from fruits_contract.modes import MODES
from fruits_job.selection import ListedFile


def hadoop_path_string(uri: str) -> str:
    """`file:///a/b%20c` (java.net.URI form) → `file:/a/b c` (Hadoop Path.toString form)."""
    return unquote(re.sub(r"^([A-Za-z][\w+.-]*):///", r"\1:/", uri))


def _spark_listing(spark: SparkSession, pattern: str) -> list[ListedFile]:
    try:
        files = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(pattern)
    except AnalysisException:  # the glob matched no folder
        return []
    rows = files.select("path", "length", F.unix_millis("modificationTime").alias("ms")).collect()
    listed = {row.path: ListedFile(row.path, row.length, row.ms) for row in rows}
    # The file index still knows the zero-length files: one py4j call for the whole list,
    # whose entries are URI-encoded (spaces as %20).
    join = spark.sparkContext._jvm.org.apache.hadoop.util.StringUtils.join
    for uri in join("\n", files._jdf.inputFiles()).splitlines():
        path = hadoop_path_string(uri)
        listed.setdefault(path, ListedFile(path, 0))
    return list(listed.values())


def list_bank(spark: SparkSession, training_uri: str, mode: str) -> list[ListedFile]:
    """Every file Spark lists under the class folders the mode reads, empty ones included."""
    files = _spark_listing(spark, f"{training_uri}/{MODES[mode].class_glob}")
    return sorted(files, key=lambda f: f.path)
