"""Fit the job's PCA several times on features Parquet files, under spark-submit.

    spark-submit --py-files fruits_job.zip tests/spark/pca_repeat.py FEATURES[,...] K REPEATS OUT

Each fit reads the features into a different number of partitions, so MLlib sums the
covariance in a different order each time (the order changes its last bits). Writes the
LAPACK implementation netlib loaded and, per file and fit, the explained variance and
components. One JVM for every file: its start is most of a small fit's time.
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import SparkSession

from fruits_job.pca import fit_pca


def main() -> None:
    files, k, repeats, out = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    spark = SparkSession.builder.appName("pca_repeat").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    jvm = spark.sparkContext._jvm
    fits: dict[str, list] = {}
    for features in files:
        for attempt in range(repeats):
            data = spark.read.parquet(features).repartition(attempt + 1).cache()
            pca = fit_pca(data, k, len(data.first().features))
            fit = {"explained": pca.explained, "components": pca.components.T.tolist()}
            fits.setdefault(features, []).append(fit)
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
