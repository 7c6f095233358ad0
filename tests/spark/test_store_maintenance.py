"""The feature store's maintenance: after a month of nightly merges, OPTIMIZE compacts the
table's small files at least tenfold, VACUUM keeps what the retention keeps, and the table
reads back the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.spark.stores import feature_rows, file_uri, open_store

pytestmark = [pytest.mark.slow, pytest.mark.long]

NIGHTS = 30


def _content(spark, store) -> list[tuple]:
    table = store.table.read(store.table.current_version())
    rows = table.select("fingerprint", "path", "bytes", "modified", "features", "run_id")
    return sorted((*r[:4], tuple(r[4]), r[5]) for r in rows.collect())


@pytest.fixture(scope="module")
def a_month_of_nights(spark, tmp_path_factory):
    """A bank of 200 images, then 30 nights each changing 1% of it (two new images)."""
    root = tmp_path_factory.mktemp("store")
    store = open_store(spark, root)
    store.merge(feature_rows(spark, [f"s3://b/T/A/{i}.jpg" for i in range(200)], 0.5), "cold")
    for night in range(NIGHTS):
        new = [f"s3://b/T/A/n{night}-{i}.jpg" for i in range(2)]
        open_store(spark, root).merge(feature_rows(spark, new, float(night)), f"night-{night}")
    return root


def test_optimize_compacts_a_month_of_nights_tenfold_and_reads_back_the_same(
    spark, a_month_of_nights, tmp_path
):
    from fruits_contract.job_request import MaintenanceRequest
    from fruits_job.maintenance import run

    store = open_store(spark, a_month_of_nights)
    before = _content(spark, store)
    assert len(before) == 200 + 2 * NIGHTS
    request = MaintenanceRequest(
        feature_store=file_uri(a_month_of_nights),
        output_uri=file_uri(tmp_path / "out"),
        run_id="maintenance-1",
    )
    record = run(spark, request)
    assert record["before"]["files"] >= NIGHTS + 1
    assert record["after_optimize"]["files"] * 10 <= record["before"]["files"]
    assert record["after"]["files"] == record["after_optimize"]["files"]
    # Within the retention nothing is deleted: every version stays readable.
    assert record["vacuumed_files"] == 0
    assert _content(spark, store) == before
    oldest = store.table.read(1).count()
    assert oldest == 200
    # The store's record says when: the next maintenance is due from it.
    saved = json.loads(Path(a_month_of_nights, "maintenance.json").read_text())
    assert saved == record == json.loads((tmp_path / "out" / "maintenance.json").read_text())
    assert saved["run_id"] == "maintenance-1"


def test_a_maintained_table_serves_lookups_as_before(spark, a_month_of_nights):
    store = open_store(spark, a_month_of_nights)
    wanted = spark.createDataFrame(
        [("s3://b/T/A/3.jpg", 10, 1000), ("s3://b/T/A/n29-1.jpg", 10, 1000), ("x", 10, 1000)],
        "path string, bytes long, modified long",
    )
    found = wanted.join(store.stored(), ["path", "bytes", "modified"]).select("path", "features")
    values = {row.path: row.features[0] for row in found.collect()}
    assert values == {"s3://b/T/A/3.jpg": 0.5, "s3://b/T/A/n29-1.jpg": 29.0}


def test_maintenance_of_a_store_without_a_table_records_nothing_to_do(spark, tmp_path):
    from fruits_contract.job_request import MaintenanceRequest
    from fruits_job.maintenance import run

    request = MaintenanceRequest(
        feature_store=file_uri(tmp_path / "store"),
        output_uri=file_uri(tmp_path / "out"),
        run_id="m",
    )
    record = run(spark, request)
    assert "before" not in record
    assert (tmp_path / "out" / "_SUCCESS").exists()
    assert not (tmp_path / "store" / "maintenance.json").exists()
