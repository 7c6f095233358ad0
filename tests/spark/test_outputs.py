"""The job's data set writer: Parquet, and a CSV that reads back to exactly what was
written."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fruits_job import writers

NAMES = [f"f{i}" for i in range(4)]
ODD_LABELS = [
    'say "cheese", please',
    " leading and trailing spaces ",
    "back\\slash;semi",
    "Äpfel grün",
    "tab\there",
]


def _rows(labels: list[str], seed: int = 0) -> list[tuple[str, str, list[float]]]:
    rng = np.random.default_rng(seed)
    values = rng.exponential(scale=1.0, size=(len(labels), len(NAMES))).astype(np.float32)
    values[0, 0] = 1e-5  # Java prints it 1.0E-5
    values[1, 1] = 0.0
    return [
        (f"s3://bank/Training/{label}/{i}, copy.jpg", label, [float(v) for v in values[i]])
        for i, label in enumerate(labels)
    ]


def _read_csv_folder(folder: Path) -> list[list[str]]:
    rows = []
    for part in sorted(folder.glob("part-*.csv")):
        with part.open(newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
        assert lines[0] == ["path", "label", *NAMES], part  # a header in every part file
        rows += lines[1:]
    return sorted(rows)


@pytest.mark.parametrize(
    "labels", [ODD_LABELS, [*ODD_LABELS, "line\nbreak"]], ids=["lines", "columns"]
)
def test_csv_reads_back_to_the_rows_and_matches_parquet(spark, tmp_path, labels):
    rows = _rows(labels)
    frame = spark.createDataFrame(rows, "path string, label string, features array<float>")
    writers.write_dataset(frame.repartition(3), str(tmp_path), "t", len(rows), ("features", NAMES))

    written = _read_csv_folder(tmp_path / "t" / "csv")
    # Read back, every text field is as written and every number is the float32 stored.
    assert [row[:2] for row in written] == sorted([path, label] for path, label, _ in rows)
    by_path = {path: values for path, _, values in rows}
    for path, _, *numbers in written:
        assert [np.float32(n) for n in numbers] == [np.float32(v) for v in by_path[path]]
    table = pq.read_table(tmp_path / "t" / "parquet").to_pylist()
    assert sorted([r["path"], r["label"]] for r in table) == [row[:2] for row in written]
    assert {r["path"]: r["features"] for r in table} == {
        p: [float(np.float32(v)) for v in vs] for p, _, vs in rows
    }


def test_numbers_are_printed_as_sparks_csv_writer_prints_them(spark, tmp_path):
    rows = _rows(["A", "B", "C"])
    frame = spark.createDataFrame(rows, "path string, label string, features array<float>")
    writers.write_dataset(frame, str(tmp_path), "lines", len(rows), ("features", NAMES))
    writers.expand_array(frame, "features", NAMES).coalesce(1).write.option("header", True).csv(
        str(tmp_path / "spark")
    )

    def text(folder: Path) -> list[str]:
        (part,) = folder.glob("part-*.csv")
        return part.read_text(encoding="utf-8").splitlines()

    ours, sparks = text(tmp_path / "lines" / "csv"), text(tmp_path / "spark")
    # Same bytes for these rows, whose paths hold a comma (both quote them).
    assert ours == sparks
    assert "1.0E-5" in ours[1]


def test_a_data_set_is_written_in_files_of_many_rows_not_one_per_task(spark, tmp_path):
    """A bank of 100M images makes 100,000 feature tasks: the outputs must not make a file
    of each (S3 requests, and validation reads every part's footer)."""
    from fruits_contract import outputs

    frame = spark.range(3000).selectExpr("cast(id as string) as path", "'A' as label")
    many_tasks = frame.repartition(60)
    writers.write_dataset(many_tasks, str(tmp_path), outputs.METADATA, 3000)
    parts = list((tmp_path / outputs.METADATA / "parquet").glob("part-*.parquet"))
    assert len(parts) == 1
    assert sum(pq.read_metadata(p).num_rows for p in parts) == 3000
