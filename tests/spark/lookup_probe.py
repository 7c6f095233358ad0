"""A warm run's lookup against a big feature table, under a small spark.driver.maxResultSize.

    spark-submit --conf spark.driver.maxResultSize=16m ... lookup_probe.py STORE ROWS NEW OUT

Writes a table of ROWS synthetic rows (vectors of 1280 equal numbers), then looks up ROWS
wanted images it holds and NEW ones it does not, as the job's feature stage does, and writes
the counts it found to OUT (JSON).
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import functions as F

from fruits_job.feature_stage import missing
from fruits_job.feature_store import TABLE, FeatureStore, Fingerprint
from fruits_job.session import build_session


def main(store: str, rows: int, new: int, out: str) -> None:
    spark = build_session()
    fingerprint = Fingerprint.of("0" * 64, "onnxruntime", 224)
    path = F.concat(F.lit("s3://bank/Training/A/"), F.col("id").cast("string"), F.lit(".jpg"))
    (
        spark.range(rows, numPartitions=8)
        .select(
            F.lit(fingerprint.id).alias("fingerprint"),
            path.alias("path"),
            F.lit(5000).cast("long").alias("bytes"),
            F.lit(1000).cast("long").alias("modified"),
            F.array_repeat((F.col("id") % 7).cast("float"), 1280).alias("features"),
            F.lit("synthetic").alias("run_id"),
            F.current_timestamp().alias("computed_at"),
        )
        .write.format("delta")
        .partitionBy("fingerprint")
        .save(f"{store}/{TABLE}")
    )
    wanted = spark.range(rows + new).select(
        path.alias("path"),
        F.lit(5000).cast("long").alias("bytes"),
        F.when(F.col("id") < rows, 1000).otherwise(2000).cast("long").alias("modified"),
    )
    stored = FeatureStore(spark, store, fingerprint).stored()
    computing = missing(wanted, stored).count()
    reused = wanted.join(stored, ["path", "bytes", "modified"]).count()
    with open(out, "w") as handle:
        json.dump({"to_compute": computing, "reused": reused}, handle)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
