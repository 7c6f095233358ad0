"""Fit the job's PCA several times on one features Parquet, under spark-submit.

    spark-submit --py-files fruits_job.zip tests/spark/pca_repeat.py FEATURES K REPEATS OUT_JSON

Each fit reads the features into a different number of partitions, so MLlib sums the
covariance in a different order each time (the order changes its last bits). Writes the
LAPACK implementation netlib loaded and, per fit, the explained variance and components.
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import SparkSession

from fruits_job.pca import fit_pca


def main() -> None:
    features, k, repeats, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    spark = SparkSession.builder.appName("pca_repeat").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    jvm = spark.sparkContext._jvm
    fits = []
    for attempt in range(repeats):
        data = spark.read.parquet(features).repartition(attempt + 1).cache()
        pca = fit_pca(data, k, len(data.first().features))
        fits.append({"explained": pca.explained, "components": pca.components.T.tolist()})
        data.unpersist()
    result = {
        "lapack": jvm.dev.ludovic.netlib.lapack.LAPACK.getInstance().getClass().getName(),
        "blas": jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getName(),
        "fits": fits,
    }
    with open(out, "w") as handle:
        json.dump(result, handle)
    spark.stop()


if __name__ == "__main__":
    main()
