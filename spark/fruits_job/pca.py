"""PCA of the features: MLlib for the distributed work, numpy for the small decomposition.

MLlib's own ``PCA.fit`` computes the covariance over the cluster (right: 2.5e-16 from numpy),
then an SVD of that 1280 x 1280 matrix on the driver: Breeze calls LAPACK's ``dgesdd``
through dev.ludovic.netlib. Without a native LAPACK on the machine, netlib falls back to
``F2jLAPACK``, a 2007 Java translation of reference LAPACK 3.1.1 (arpack_combined_all), whose
divide-and-conquer step ``dbdsdc('U', 'I')`` returns wrong singular values for many
rank-deficient covariances (fewer images than 1280 dimensions): only the first one right,
their sum 9x the trace, ``info = 0``. It is deterministic per input bit pattern (no JIT in
it: the same under -Xint, C1 or C2, Java 17 or 25); what varies is the covariance's last bit,
since Spark adds partition results in no fixed order. Measured on mini-mode features: half
of the covariances that differ only by rounding failed (300 and 600 images; none at 2,000).
Native OpenBLAS's newer LAPACK gets them right, but then a run's correctness hangs on a
system package.

So the job splits the work:

- covariance: MLlib (``RowMatrix.computeCovariance``), a tree aggregation over the cluster;
- decomposition: ``numpy.linalg.eigh`` on the driver, the symmetric eigensolver of the
  LAPACK that numpy's wheel bundles (scipy-openblas): no system library, right on every
  variant that broke the Java SVD, and 0.2 s instead of 4-8 s;
- projection: an MLlib ``PCAModel`` holding those components, applied over the cluster.

The result is checked against the data itself (variance of each projected component /
total variance = explained variance), and a mismatch fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.ml.common import _py2java
from pyspark.ml.feature import PCAModel
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.ml.stat import Summarizer
from pyspark.mllib.linalg.distributed import RowMatrix
from pyspark.mllib.util import MLUtils
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


class PcaCheckError(RuntimeError):
    """The explained variance does not match the variance of the projection."""


def check_explained_variance(
    reported: list[float], measured: list[float], tolerance: float = 1e-3
) -> None:
    """For a true PCA, var(projection on component j) / total variance = explained[j]."""
    worst = max(abs(r - m) for r, m in zip(reported, measured, strict=True))
    if worst > tolerance:
        raise PcaCheckError(
            f"PCA is inconsistent: component 1 reported {reported[0]:.4f} of the variance "
            f"but its projection holds {measured[0]:.4f} (worst gap {worst:.4f}); "
            "nothing was written for this PCA"
        )


def principal_components(covariance: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k leading eigenvectors (n x k, columns) and every component's share of variance.

    Signs are fixed (each component's largest coordinate is positive), so the same data gives
    the same components on every run and machine.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    # A rank-deficient covariance (fewer images than 1280 dimensions) has eigenvalues that
    # are zero up to rounding, some slightly negative: they hold no variance.
    eigenvalues = np.clip(eigenvalues[order], 0.0, None)
    components = eigenvectors[:, order[:k]]
    largest = np.abs(components).argmax(axis=0)
    components *= np.sign(components[largest, np.arange(k)])
    return components, eigenvalues / eigenvalues.sum()


def covariance(vectors: DataFrame, column: str) -> np.ndarray:
    """Sample covariance of a vector column, computed by MLlib over the cluster."""
    rows = MLUtils.convertVectorColumnsFromML(vectors.select(column), column)
    return RowMatrix(rows).computeCovariance().toArray()


def projection_model(vectors: DataFrame, components: np.ndarray, explained: np.ndarray):
    """An MLlib PCAModel holding these components (MLlib has no public constructor for one)."""
    sc = vectors.sparkSession.sparkContext
    n, k = components.shape
    java_model = sc._jvm.org.apache.spark.ml.feature.PCAModel(
        "fruits_features_pca",
        _py2java(sc, DenseMatrix(n, k, components.flatten(order="F").tolist())),
        _py2java(sc, DenseVector(explained[:k].tolist())),
    )
    java_model.set(java_model.k(), k)
    return PCAModel(java_model)


@dataclass(frozen=True)
class Pca:
    projected: DataFrame  # path, label, pca (K doubles)
    explained: list[float]  # share of the variance of each of the K components
    components: np.ndarray  # 1280 x K, one component per column


def fit_pca(features: DataFrame, k: int) -> Pca:
    """The K-component PCA of a path, label, features DataFrame, checked against the data."""
    vectors = features.select("path", "label", array_to_vector("features").alias("vector"))
    components, explained = principal_components(covariance(vectors, "vector"), k)
    model = projection_model(vectors, components, explained)
    model.setInputCol("vector").setOutputCol("projected")
    transformed = model.transform(vectors)
    total = float(vectors.select(Summarizer.variance(F.col("vector"))).first()[0].toArray().sum())
    along = transformed.select(Summarizer.variance(F.col("projected"))).first()[0].toArray()
    reported = [float(v) for v in explained[:k]]
    check_explained_variance(reported, [float(v) / total for v in along])
    projected = transformed.select("path", "label", vector_to_array("projected").alias("pca"))
    return Pca(projected, reported, components)
