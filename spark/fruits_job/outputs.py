"""Writing a run's outputs (layout in docs/contract.md)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence

from pyspark.sql import DataFrame, SparkSession
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


def write_table(df: DataFrame, uri: str, csv_df: DataFrame | None = None) -> None:
    """Parquet under uri/parquet and CSV (with header) under uri/csv."""
    df.write.mode("errorifexists").parquet(f"{uri}/parquet")
    # RFC 4180: a quote inside a quoted field is doubled. Spark's default escapes it with a
    # backslash, which Python's csv module and pandas read back wrong.
    (csv_df if csv_df is not None else df).write.mode("errorifexists").option(
        "header", True
    ).option("escape", '"').csv(f"{uri}/csv")


def variance_csv(explained: Sequence[float]) -> str:
    cumulative = 0.0
    rows = []
    for index, value in enumerate(explained, start=1):
        cumulative += value
        rows.append((index, f"{value:.10f}", f"{cumulative:.10f}"))
    return to_csv_text(["component", "explained_variance", "cumulative_variance"], rows)


def write_json(spark: SparkSession, uri: str, payload: dict) -> None:
    storage.write_text(spark, uri, json.dumps(payload, indent=2, sort_keys=True) + "\n")
