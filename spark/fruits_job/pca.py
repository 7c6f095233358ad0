"""MLlib PCA over the features, checked against what the data says.

MLlib computes the components from an SVD of the covariance matrix. Without a
native LAPACK, that SVD runs on a pure-Java fallback which, on this project's
Java 17 machines, returned wrong singular values for 1280x1280 covariances
(first component 2.6% instead of 23.6%, changing between runs). The check
below makes such a result fail the run instead of being written.
"""

from __future__ import annotations

from pyspark.ml.feature import PCA
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


class PcaCheckError(RuntimeError):
    """MLlib's explained variance does not match the variance of its own projection."""


def check_explained_variance(
    reported: list[float], measured: list[float], tolerance: float = 1e-3
) -> None:
    """For a true PCA, var(projection on component j) / total variance = explained[j]."""
    worst = max(abs(r - m) for r, m in zip(reported, measured, strict=True))
    if worst > tolerance:
        raise PcaCheckError(
            f"MLlib PCA is inconsistent: component 1 reported {reported[0]:.4f} of the variance "
            f"but its projection holds {measured[0]:.4f} (worst gap {worst:.4f}). The SVD likely "
            "ran on the pure-Java LAPACK fallback: give Spark a native LAPACK with "
            "-Ddev.ludovic.netlib.lapack.nativeLibPath=<libopenblas.so.0> (README, Troubleshooting)"
        )


def fit_pca(features: DataFrame, k: int) -> tuple[DataFrame, list[float]]:
    """path, label, pca (K doubles) and the explained variance of each component."""
    vectors = features.select("path", "label", array_to_vector("features").alias("vector"))
    model = PCA(k=k, inputCol="vector", outputCol="projected").fit(vectors)
    explained = [float(v) for v in model.explainedVariance.toArray()]
    transformed = model.transform(vectors)
    total = float(vectors.select(Summarizer.variance(F.col("vector"))).first()[0].toArray().sum())
    along = transformed.select(Summarizer.variance(F.col("projected"))).first()[0].toArray()
    check_explained_variance(explained, [float(v) / total for v in along])
    projected = transformed.select("path", "label", vector_to_array("projected").alias("pca"))
    return projected, explained
