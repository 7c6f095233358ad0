"""The store's files as Delta Kernel lists them: the files Delta's own reader reads, at every
version, and a table whose files alone are not its rows read by Delta's reader."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tests.spark.stores import feature_rows, open_store

pytestmark = pytest.mark.slow


def delta_reads(spark, uri: str, version: int, fingerprint: str) -> set[str]:
    """The files Delta's Spark reader scans for one fingerprint at one version."""
    table = spark.read.format("delta").option("versionAsOf", version).load(uri)
    return {unquote(f) for f in table.where(f"fingerprint = '{fingerprint}'").inputFiles()}


def kernel_lists(spark, uri: str, version: int, fingerprint: str) -> set[str]:
    from fruits_job.store_files import partition_files

    return {unquote(f) for f in partition_files(spark, uri, version, "fingerprint", fingerprint)}


def test_kernel_lists_the_files_delta_reads_at_every_version(spark, tmp_path):
    root = tmp_path / "segments" / "a store" / "été"
    paths = [f"s3://b/Training/A/{i}.jpg" for i in range(12)]
    one, other = open_store(spark, root), open_store(spark, root, sha="1" * 64)
    for night in range(4):  # nightly merges, two models
        one.merge(feature_rows(spark, paths[3 * night : 3 * night + 3], 1.0), f"run-{night}")
    other.merge(feature_rows(spark, paths[:5], 2.0), "other-model")
    table = one.table
    spark.sql(f"OPTIMIZE {table.sql_name}")
    newest = table.current_version()
    for version in range(1, newest + 1):
        for fingerprint in (one.fingerprint.id, other.fingerprint.id):
            listed = kernel_lists(spark, table.uri, version, fingerprint)
            assert listed == delta_reads(spark, table.uri, version, fingerprint), version
    # After OPTIMIZE: one file per fingerprint, the twelve rows of the first read from it.
    assert len(kernel_lists(spark, table.uri, newest, one.fingerprint.id)) == 1
    reopened = open_store(spark, root)
    assert sorted(r.path for r in reopened.stored().collect()) == sorted(paths)


def test_a_table_that_needs_deltas_reader_is_read_by_it(spark, tmp_path):
    """Column mapping (another writer may enable it; deletion vectors likewise) makes a
    file's columns other than the table's: such a protocol is read by Delta's reader."""
    from fruits_job.store_files import partition_files

    store = open_store(spark, tmp_path)
    store.merge(feature_rows(spark, ["a", "b", "c"], 1.0), "run-1")
    table = store.table
    spark.sql(
        f"ALTER TABLE {table.sql_name} SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name')"
    )
    version = table.current_version()
    assert partition_files(spark, table.uri, 1, "fingerprint", store.fingerprint.id)
    assert partition_files(spark, table.uri, version, "fingerprint", store.fingerprint.id) is None
    stored = open_store(spark, tmp_path).stored()
    assert sorted((r.path, r.features[0]) for r in stored.collect()) == [
        ("a", 1.0),
        ("b", 1.0),
        ("c", 1.0),
    ]
