"""Listing the bank and reading the selected images, through Spark's file source.

The listing is Spark's own (binaryFile without its content column lists files, in parallel on
a cluster, and reads no bytes), completed with the zero-length files its scans skip (the
file index knows them). It never shows hidden-looking names (Hadoop leaves out names
starting with ``_`` or ``.``): the caller that lists the bank itself (the DAG, on S3) hands
those to the job (``--also-skipped``), so the run still reports every file. Listing them
here through Hadoop would cost a round trip per file, and Hadoop's glob fails on a name
holding ':' on a local disk.

Only the selected images are read: a class folder whose files are all selected is read
whole, otherwise its selected files one by one. A file the run does not process (a name
with ':', which Hadoop's local file system cannot open; a file beyond the mode's cap) is
never opened.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from fruits_contract.input_rule import HIDDEN_NAME, classify
from fruits_contract.modes import MODES
from fruits_job.selection import Image, ListedFile, relative_to_training


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


def read_roots(images: list[Image], listed: list[ListedFile], training_uri: str) -> list[str]:
    """What to load so that Spark reads the selected images and nothing else."""
    wanted = {image.path for image in images if image.size > 0}
    by_folder: dict[str, list[ListedFile]] = defaultdict(list)
    for file in listed:
        by_folder[posixpath.dirname(file.path)].append(file)
    roots: list[str] = []
    for folder, files in sorted(by_folder.items()):
        selected = [f.path for f in files if f.path in wanted]
        if not selected:
            continue
        # Read whole when Spark's scan of the folder would give exactly the selected images:
        # what else it holds is empty (scans skip it) or hidden (listings skip it), and it
        # has no subfolder (a folder's scan reaches into its subfolders).
        nested = any(other.startswith(folder + "/") for other in by_folder if other != folder)
        whole = not nested and all(
            f.path in wanted
            or f.size == 0
            or classify(relative_to_training(f.path, training_uri))[1] == HIDDEN_NAME
            for f in files
        )
        roots.extend([folder] if whole else selected)
    return roots


def read_images(spark: SparkSession, roots: list[str]) -> DataFrame:
    """path, content and size of the files under ``roots`` (folders are read flat)."""
    return (
        spark.read.format("binaryFile")
        .load(roots)
        .select("path", "content", F.col("length").alias("bytes"))
    )
