"""Writing a run's outputs (names and layout: fruits_contract.outputs, docs/contract.md)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from fruits_contract import outputs
from fruits_job import storage

log = logging.getLogger("fruits_job")

# Files named in the log; the rest are counted, and listed in errors/ and skipped/.
NAMED_IN_LOG = 20


def expand_array(df: DataFrame, column: str, names: Sequence[str]) -> DataFrame:
    """path, label, array → path, label, one column per element (CSV has no arrays)."""
    items = [F.col(column)[i].alias(name) for i, name in enumerate(names)]
    return df.select("path", "label", *items)


def _rfc4180(column: str) -> Column:
    """A text field as RFC 4180 writes it: quoted, quotes doubled, when it holds a quote, a
    comma or a line break."""
    quoted = F.concat(F.lit('"'), F.regexp_replace(column, '"', '""'), F.lit('"'))
    return F.when(F.col(column).rlike(r'[",\r\n]'), quoted).otherwise(F.col(column))


def csv_lines(df: DataFrame, column: str, names: Sequence[str]) -> DataFrame:
    """path, label, array (no nulls) → one column named by the CSV header, holding each row's
    CSV line; numbers as Spark's CSV writer prints them (Java's Float/Double.toString)."""
    numbers = F.array_join(F.transform(column, lambda x: x.cast("string")), ",")
    line = F.concat_ws(",", _rfc4180("path"), _rfc4180("label"), numbers)
    return df.select(line.alias(",".join(["path", "label", *names])))


# Spark's CSV writer would quote a whole pre-formatted line holding one of these.
_BREAKS_LINE = r"[\r\n\x00]"


def _csv(df: DataFrame, uri: str, array: tuple[str, Sequence[str]] | None) -> None:
    """CSV with a header; ``array`` = (column, names) gives one CSV column per element.

    Spark's CSV writer formats a 1280-column row slowly (9.5 s per 9,000 feature rows
    here, half of a warm run's output time): the array is written as pre-formatted lines
    instead, a one-column CSV whose separator never occurs, so the writer adds nothing. A
    path or label holding a line break would make it quote the line: then, and only then,
    Spark's writer gets the columns.
    """
    writer = df.write
    if array is not None:
        breaks = F.col("path").rlike(_BREAKS_LINE) | F.col("label").rlike(_BREAKS_LINE)
        if df.filter(breaks).limit(1).count() == 0:
            writer = csv_lines(df, *array).write.option("quote", "").option("sep", "\u0000")
        else:
            writer = expand_array(df, *array).write
    # Spark trims leading and trailing spaces of every field by default: a label is kept
    # as it is. RFC 4180: a quote inside a quoted field is doubled; Spark's default escapes
    # it with a backslash, which Python's csv module and pandas read back wrong.
    writer.mode("errorifexists").option("header", True).option(
        "ignoreLeadingWhiteSpace", False
    ).option("ignoreTrailingWhiteSpace", False).option("escape", '"').csv(uri)


# Rows per part file: files of tens of MB, not one per feature task (a bank of 100M
# images makes 100,000 of those); the data sets not named here have short rows.
ROWS_PER_FILE = {outputs.FEATURES: 20_000, outputs.PCA: 200_000}
SHORT_ROWS_PER_FILE = 1_000_000


def write_dataset(
    df: DataFrame,
    output: str,
    name: str,
    rows: int,
    array: tuple[str, Sequence[str]] | None = None,
) -> None:
    """A data set of ``rows`` rows, ``<output>/<name>/<format>/``, by the executors: Parquet,
    then (when the contract has it in CSV) its CSV export from the Parquet written, so the
    rows are computed once. ``array`` = (column, names) names the elements of an array
    column in CSV, which has no arrays."""
    files = max(1, math.ceil(rows / ROWS_PER_FILE.get(name, SHORT_ROWS_PER_FILE)))
    parquet = f"{output}/{name}/{outputs.PARQUET}"
    df.coalesce(files).write.mode("errorifexists").parquet(parquet)
    if outputs.CSV in outputs.formats(name):
        written = df.sparkSession.read.parquet(parquet)
        _csv(written, f"{output}/{name}/{outputs.CSV}", array)


def write_text(spark: SparkSession, output: str, name: str, text: str) -> None:
    """One file of the run, ``name`` as fruits_contract.outputs names it."""
    storage.write_text(spark, f"{output}/{name}", text)


def _first(df: DataFrame, rows: int) -> list[Row]:
    """The first rows by path: a bounded amount, for the log and the summary."""
    return df.orderBy("path").limit(rows).collect()


def write_files_report(
    spark: SparkSession, output: str, name: str, files: DataFrame, summary: str
) -> int:
    """errors/ or skipped/ (path, label, bytes, reason) and the first of them in the summary;
    how many there are."""
    count = files.count()
    write_dataset(files, output, name, count)
    first = _first(files, outputs.SAMPLE_ROWS)
    write_text(spark, output, summary, outputs.to_csv_text(files.columns, first))
    return count


def write_errors_and_metadata(
    spark: SparkSession, output: str, rows: DataFrame, images: int, skipped: DataFrame
) -> int:
    """errors/, skipped/ and metadata/ of the ``images`` rows (path, label, bytes, modified,
    error), with their summaries; how many images could not be used."""
    errors = rows.where(F.col("error").isNotNull()).withColumnRenamed("error", "reason")
    errors = errors.select(*outputs.ERROR_COLUMNS)
    count = write_files_report(spark, output, outputs.ERRORS, errors, outputs.SUMMARY_ERRORS)
    for row in _first(errors, NAMED_IN_LOG):
        log.warning("cannot use %s: %s", row.path, row.reason)
    if count > NAMED_IN_LOG:
        log.warning("... and %d more images that cannot be used, in errors/", count - NAMED_IN_LOG)
    write_files_report(spark, output, outputs.SKIPPED, skipped, outputs.SUMMARY_SKIPPED)
    write_dataset(metadata_of(rows), output, outputs.METADATA, images)
    return count


def metadata_of(rows: DataFrame) -> DataFrame:
    """path, label, bytes, modified, status (ok or error): one row per image selected."""
    status = F.when(F.col("error").isNull(), "ok").otherwise("error").alias("status")
    return rows.select("path", "label", "bytes", "modified", status)


def write_features(output: str, features: DataFrame, rows: int) -> None:
    """features/: path, label, features (1280 floats)."""
    column = outputs.VECTOR_COLUMN[outputs.FEATURES]
    names = outputs.feature_names()
    write_dataset(features, output, outputs.FEATURES, rows, (column, names))


def write_pca(output: str, projected: DataFrame, k: int, rows: int) -> None:
    """pca/: path, label, pca (K doubles)."""
    column = outputs.VECTOR_COLUMN[outputs.PCA]
    write_dataset(projected, output, outputs.PCA, rows, (column, outputs.pca_names(k)))


def write_summary(spark: SparkSession, output: str, rows: DataFrame, projected: DataFrame) -> None:
    """What the report reads, of a size bounded by the classes and a sample: per-class
    counts, and the PCA of a fixed sample of the images (the same on every read)."""
    per_class = (
        rows.groupBy("label")
        .agg(
            F.count("*").alias("images"),
            F.sum(F.col("error").isNotNull().cast("int")).alias("errors"),
        )
        .orderBy("label")
        .collect()
    )
    write_text(
        spark,
        output,
        outputs.SUMMARY_CLASSES,
        outputs.to_csv_text(outputs.CLASS_COLUMNS, per_class),
    )
    sample = projected.orderBy(F.xxhash64("path"), "path").limit(outputs.PCA_SAMPLE_ROWS)
    sample.coalesce(1).write.parquet(f"{output}/{outputs.SUMMARY_PCA_SAMPLE}")


def write_model_info(spark: SparkSession, output: str, info: dict) -> None:
    """model_info/model_info.json and model_info/variance.csv."""
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    write_text(spark, output, outputs.MODEL_INFO, text)
    write_text(
        spark, output, outputs.VARIANCE_CSV, outputs.variance_csv(info["explained_variance"])
    )


def write_success(spark: SparkSession, output: str) -> None:
    """_SUCCESS, written last: the run is complete."""
    write_text(spark, output, outputs.SUCCESS, "")
