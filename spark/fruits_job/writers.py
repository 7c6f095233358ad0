"""Writing a run's outputs (names and layout: fruits_contract.outputs, docs/contract.md)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from fruits_contract import outputs
from fruits_job import storage

log = logging.getLogger("fruits_job")


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


def _parquet(df: DataFrame, uri: str, array: tuple[str, Sequence[str]] | None) -> None:
    df.write.mode("errorifexists").parquet(uri)


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


# How each format of fruits_contract.outputs.FORMATS is written.
FORMAT_WRITERS = {outputs.PARQUET: _parquet, outputs.CSV: _csv}


def write_table(df: DataFrame, uri: str, array: tuple[str, Sequence[str]] | None = None) -> None:
    """A data set in every output format, ``uri/<format>/``; ``array`` = (column, names)
    names the elements of an array column where a format has no arrays (CSV)."""
    for fmt in outputs.FORMATS:
        FORMAT_WRITERS[fmt](df, f"{uri}/{fmt}", array)


def write_text(spark: SparkSession, output: str, name: str, text: str) -> None:
    """One file of the run, ``name`` as fruits_contract.outputs names it."""
    storage.write_text(spark, f"{output}/{name}", text)


def write_errors_and_metadata(
    spark: SparkSession, output: str, result: DataFrame, skipped: list[tuple[str, str, int, str]]
) -> list[Row]:
    """errors/errors.csv (returned, sorted by path), errors/skipped.csv and metadata/ of
    every image's row (path, label, bytes, error)."""
    error_rows = (
        result.filter(F.col("error").isNotNull())
        .select("path", "label", "bytes", "error")
        .orderBy("path")
        .collect()
    )
    for row in error_rows:
        log.warning("cannot use %s: %s", row.path, row.error)
    write_text(
        spark, output, outputs.ERRORS_CSV, outputs.to_csv_text(outputs.ERROR_COLUMNS, error_rows)
    )
    write_text(
        spark, output, outputs.SKIPPED_CSV, outputs.to_csv_text(outputs.SKIPPED_COLUMNS, skipped)
    )
    status = F.when(F.col("error").isNull(), "ok").otherwise("error").alias("status")
    metadata = result.select("path", "label", "bytes", status).coalesce(1)
    write_table(metadata, f"{output}/{outputs.METADATA}")
    return error_rows


def write_features(output: str, features: DataFrame) -> None:
    """features/: path, label, features (1280 floats)."""
    column = outputs.VECTOR_COLUMN[outputs.FEATURES]
    write_table(features, f"{output}/{outputs.FEATURES}", (column, outputs.feature_names()))


def write_pca(output: str, projected: DataFrame, k: int) -> None:
    """pca/: path, label, pca (K doubles)."""
    column = outputs.VECTOR_COLUMN[outputs.PCA]
    write_table(projected, f"{output}/{outputs.PCA}", (column, outputs.pca_names(k)))


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
