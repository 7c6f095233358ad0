"""A month of nightly runs' writes to a feature store, without running the job.

    spark-submit --py-files fruits_job.zip bench/simulate_nights.py STORE SHA256 ENGINE NIGHTS ROWS

Each night adds ROWS rows (synthetic features) of new images to the store, through the store
code of the zip it runs with: the Delta table's MERGE, or the segments and commits of the
store before it. The rows are under the fingerprint the job computes for these weights and
engine, so the next run's lookup reads them.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from fruits_job import feature_store

try:
    from fruits_job.session import build_session
except ImportError:  # the job before its session module
    from fruits_job.job import build_session


def night_rows(spark, night: int, rows: int):
    path = F.concat(F.lit(f"s3://bank/night-{night}/Training/Night/"), F.col("id").cast("string"))
    return spark.range(rows, numPartitions=2).select(
        path.alias("path"),
        F.lit(5000).cast("long").alias("bytes"),
        F.lit(1000).cast("long").alias("modified"),
        F.array_repeat((F.rand(night) * 2).cast("float"), 1280).alias("features"),
    )


def main(store: str, sha256: str, engine: str, nights: int, rows: int) -> None:
    spark = build_session()
    spark.sparkContext.setLogLevel("WARN")
    for night in range(nights):
        frame = night_rows(spark, night, rows)
        if hasattr(feature_store.FeatureStore, "merge"):  # the Delta table
            fingerprint = feature_store.Fingerprint.of(sha256, engine, 224)
            feature_store.FeatureStore(spark, store, fingerprint).merge(frame, f"night-{night}")
        else:  # segments and commits (the store before the Delta table)
            fingerprint = feature_store.Fingerprint(sha256, engine, 224)
            old = feature_store.FeatureStore(spark, store, fingerprint)
            segment = feature_store.new_segment_id()
            old.write_segment(frame, segment)
            old.commit(segment, rows, f"night-{night}")
    spark.stop()


if __name__ == "__main__":
    store, sha, engine, nights, rows = sys.argv[1:]
    main(store, sha, engine, int(nights), int(rows))
