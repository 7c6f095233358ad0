"""One PCA fit, timed, under spark-submit (bench/pca_benchmark.py runs it; not a test).

    spark-submit bench/pca_fit.py FEATURES_PARQUET OUTPUT_DIR {job,mllib} K RESULT_JSON

``job``: the job's own ``fruits_job.pca.fit_pca`` (covariance by numpy over Spark, numpy
eigh, MLlib projection); ``mllib``: what the job did before, ``pyspark.ml.feature.PCA(k).fit``
(MLlib covariance + Breeze SVD through netlib's LAPACK). Both project the features and
write the PCA as Parquet + CSV, like the job's ``pca`` stage.
"""

from __future__ import annotations

import json
import sys
import time

from pyspark import StorageLevel
from pyspark.ml.feature import PCA
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.stat import Summarizer
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fruits_job import writers
from fruits_job.pca import PcaCheckError, check_explained_variance, fit_pca


def mllib_pca(features, k):
    """The job's PCA before: MLlib's fit, then the same check against the projection."""
    vectors = features.select("path", "label", array_to_vector("features").alias("vector"))
    model = PCA(k=k, inputCol="vector", outputCol="projected").fit(vectors)
    explained = [float(v) for v in model.explainedVariance.toArray()]
    transformed = model.transform(vectors)
    total = float(vectors.select(Summarizer.variance(F.col("vector"))).first()[0].toArray().sum())
    along = transformed.select(Summarizer.variance(F.col("projected"))).first()[0].toArray()
    check_explained_variance(explained, [float(v) / total for v in along])
    projected = transformed.select("path", "label", vector_to_array("projected").alias("pca"))
    return projected, explained


def job_pca(features, k):
    pca = fit_pca(features, k, len(features.first().features))
    return pca.projected, pca.explained


def main() -> None:
    features_uri, output, method, k, result_path = sys.argv[1:6]
    k = int(k)
    spark = SparkSession.builder.appName("pca_fit").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    jvm = spark.sparkContext._jvm
    lapack = jvm.dev.ludovic.netlib.lapack.LAPACK.getInstance().getClass().getName()
    blas = jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getName()
    features = spark.read.parquet(features_uri).persist(StorageLevel.MEMORY_AND_DISK)
    rows = features.count()
    started = time.perf_counter()
    fit = job_pca if method == "job" else mllib_pca
    try:
        projected, explained = fit(features, k)
        consistent = True
    except PcaCheckError as error:  # the old path's failure: recorded, not fatal here
        print(error, file=sys.stderr)
        projected, explained, consistent = None, [], False
    fitted = time.perf_counter()
    if projected is not None:
        names = [f"pc{i:03d}" for i in range(1, k + 1)]
        writers.write_table(projected, f"{output}/pca", ("pca", names))
    done = time.perf_counter()
    with open(result_path, "w") as out:
        json.dump(
            {
                "rows": rows,
                "method": method,
                "lapack": lapack,
                "blas": blas,
                "fit_seconds": fitted - started,
                "total_seconds": done - started,
                "explained": explained,
                "consistent": consistent,
            },
            out,
        )
    spark.stop()


if __name__ == "__main__":
    main()
