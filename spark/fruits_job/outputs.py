"""Writing a run's outputs (layout in docs/contract.md)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_job import storage


def to_csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def read_csv_rows(text: str) -> list[tuple[str, str, int, str]]:
    """Rows of a path,label,bytes,reason CSV (with its header)."""
    rows = list(csv.reader(io.StringIO(text)))[1:]
    return [(path, label, int(size or 0), reason) for path, label, size, reason in rows]


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


def write_table(df: DataFrame, uri: str, array: tuple[str, Sequence[str]] | None = None) -> None:
    """Parquet under uri/parquet and CSV (with header) under uri/csv; ``array`` = (column,
    names) gives the CSV one column per element of that array column.

    Spark's CSV writer formats a 1280-column row slowly (9.5 s per 9,000 feature rows
    here, half of a warm run's output time): the array is written as pre-formatted lines
    instead, a one-column CSV whose separator never occurs, so the writer adds nothing. A
    path or label holding a line break would make it quote the line: then, and only then,
    Spark's writer gets the columns.
    """
    df.write.mode("errorifexists").parquet(f"{uri}/parquet")
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
    ).option("ignoreTrailingWhiteSpace", False).option("escape", '"').csv(f"{uri}/csv")


def variance_csv(explained: Sequence[float]) -> str:
    cumulative = 0.0
    rows = []
    for index, value in enumerate(explained, start=1):
        cumulative += value
        rows.append((index, f"{value:.10f}", f"{cumulative:.10f}"))
    return to_csv_text(["component", "explained_variance", "cumulative_variance"], rows)


def write_json(spark: SparkSession, uri: str, payload: dict) -> None:
    storage.write_text(spark, uri, json.dumps(payload, indent=2, sort_keys=True) + "\n")
