"""One writer of the feature table: merges synthetic rows, as a run's feature stage does.

    spark-submit ... merge_probe.py STORE RUN_ID FIRST COUNT VALUE OUT

Merges rows for images FIRST .. FIRST+COUNT-1 (features: VALUE 1280 times) and writes the
version it committed to OUT (JSON). Several at once stand for overlapping runs.
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import functions as F

from fruits_job.feature_store import FeatureStore, Fingerprint
from fruits_job.session import build_session


def main(store: str, run_id: str, first: int, count: int, value: float, out: str) -> None:
    spark = build_session()
    rows = spark.range(first, first + count).select(
        F.concat(F.lit("s3://bank/Training/A/"), F.col("id").cast("string")).alias("path"),
        F.lit(10).cast("long").alias("bytes"),
        F.lit(1000).cast("long").alias("modified"),
        F.array_repeat(F.lit(value).cast("float"), 1280).alias("features"),
    )
    fingerprint = Fingerprint.of("0" * 64, "onnxruntime", 224)
    version = FeatureStore(spark, store, fingerprint).merge(rows, run_id)
    with open(out, "w") as handle:
        json.dump({"version": version}, handle)
    spark.stop()


if __name__ == "__main__":
    store, run_id, first, count, value, out = sys.argv[1:]
    main(store, run_id, int(first), int(count), float(value), out)
