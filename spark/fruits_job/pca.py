"""PCA of the features: Spark for the distributed work, numpy for the dense algebra.

MLlib's own ``PCA.fit`` is wrong or slow here, in two places:

- the decomposition: an SVD of the 1280 x 1280 covariance on the driver, Breeze calling
  LAPACK's ``dgesdd`` through dev.ludovic.netlib. Without a native LAPACK on the machine,
  netlib falls back to ``F2jLAPACK``, a 2007 Java translation of reference LAPACK 3.1.1
  (arpack_combined_all), whose divide-and-conquer step ``dbdsdc('U', 'I')`` returns wrong
  singular values for many rank-deficient covariances (fewer images than 1280 dimensions):
  only the first one right, their sum 9x the trace, ``info = 0``. It is deterministic per
  input bit pattern; what varies is the covariance's last bit, since Spark adds partition
  results in no fixed order. Measured on mini-mode features: half of the covariances that
  differ only by rounding failed (300 and 600 images; none at 2,000). Native OpenBLAS's
  newer LAPACK gets them right, but then a run's correctness hangs on a system package.
- the covariance: ``RowMatrix.computeCovariance`` adds one rank-1 update per image
  (``BLAS.spr`` on the packed 1280 x 1280 triangle, 6.5 MB read and written per image):
  memory-bound, and a pass over the features for the column means first: 10.9 s of a
  19,136-image run on 2 cores here (with OpenBLAS), against 3.9 s for the pass below.

So the job splits the work:

- covariance: one pass over the features in Spark; each Python worker turns its Arrow
  batches into row blocks and adds their centred cross-products with numpy's matrix
  multiply (a level-3 BLAS call, compute-bound), and the partitions' (count, mean,
  centred cross-products), one per core, are merged exactly (Chan et al.) on the driver;
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
from pyspark import StorageLevel
from pyspark.ml.common import _py2java
from pyspark.ml.feature import PCAModel
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame

from fruits_contract.engines import FEATURE_DIM


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


@dataclass(frozen=True)
class Moments:
    """Count, mean and centred cross-products (sum of outer products of x - mean) of rows."""

    count: int
    mean: np.ndarray
    scatter: np.ndarray

    @classmethod
    def of_block(cls, block: np.ndarray) -> Moments:
        mean = block.mean(axis=0)
        centred = block - mean
        return cls(len(block), mean, centred.T @ centred)  # numpy calls BLAS syrk for X.T @ X

    def merge(self, other: Moments) -> Moments:
        """Both sets of rows at once (Chan, Golub and LeVeque): exact, whatever the split."""
        if not other.count:
            return self
        if not self.count:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        scatter = self.scatter + other.scatter
        scatter += np.outer(delta, delta) * (self.count * other.count / count)
        return Moments(count, self.mean + delta * (other.count / count), scatter)

    def covariance(self) -> np.ndarray:
        return self.scatter / (self.count - 1)

    @classmethod
    def empty(cls, dim: int) -> Moments:
        return cls(0, np.zeros(dim), np.zeros((dim, dim)))


# Rows gathered before each matrix multiply: big enough for BLAS to run at full speed,
# small enough to stay a few MB per worker (float64, 1280 columns: 42 MB).
BLOCK_ROWS = 4096


def _partition_moments(batches, dim: int):
    """Moments of one partition's Arrow batches of an array<float> column (mapInArrow)."""
    import pyarrow as pa  # in the Python worker

    total = Moments.empty(dim)
    pending: list[np.ndarray] = []
    rows = 0
    for batch in batches:
        column = batch.column(0)
        values = column.flatten().to_numpy(zero_copy_only=False)
        if column.null_count or len(values) != len(column) * dim:
            raise ValueError(f"features must be {dim} numbers per image, never null")
        pending.append(values.reshape(len(column), dim).astype(np.float64))
        rows += len(column)
        if rows >= BLOCK_ROWS:
            total = total.merge(Moments.of_block(np.concatenate(pending)))
            pending, rows = [], 0
    if pending:
        total = total.merge(Moments.of_block(np.concatenate(pending)))
    # The scatter is symmetric: its upper triangle (6.6 MB for 1280 numbers) is all of it.
    yield pa.RecordBatch.from_pydict(
        {
            "count": [total.count],
            "mean": [total.mean.tobytes()],
            "scatter": [total.scatter[np.triu_indices(dim)].tobytes()],
        }
    )


def _unpacked(triangle: bytes, dim: int) -> np.ndarray:
    """The symmetric matrix of an upper triangle packed row by row."""
    matrix = np.zeros((dim, dim))
    matrix[np.triu_indices(dim)] = np.frombuffer(triangle, dtype=np.float64)
    return matrix + np.triu(matrix, 1).T


def covariance(features: DataFrame, column: str, dim: int) -> np.ndarray:
    """Sample covariance of an array<float> column of ``dim`` numbers, in one pass."""
    parallelism = features.sparkSession.sparkContext.defaultParallelism
    partials = (
        features.select(column)
        # One partial result (6.6 MB) per core, not per partition, fetched one at a time: a
        # constant amount on the driver, whatever the number of images.
        .coalesce(parallelism)
        .mapInArrow(
            lambda batches: _partition_moments(batches, dim),
            "count long, mean binary, scatter binary",
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        partials.count()  # computed in parallel, then fetched one at a time
        moments = Moments.empty(dim)
        for row in partials.toLocalIterator():
            scatter = _unpacked(row["scatter"], dim)
            mean = np.frombuffer(row["mean"], dtype=np.float64)
            moments = moments.merge(Moments(row["count"], mean, scatter))
    finally:
        partials.unpersist()
    if moments.count < 2:
        raise ValueError("a covariance needs at least 2 images")
    return moments.covariance()


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


def fit_pca(features: DataFrame, k: int, dim: int = FEATURE_DIM) -> Pca:
    """The K-component PCA of a path, label, features (``dim`` floats) DataFrame, checked
    against the data. The projection is cached: the caller writes it, then unpersists it."""
    cov = covariance(features, "features", dim)
    components, explained = principal_components(cov, k)
    vectors = features.select("path", "label", array_to_vector("features").alias("vector"))
    model = projection_model(vectors, components, explained)
    model.setInputCol("vector").setOutputCol("projected")
    projected = (
        model.transform(vectors)
        .select("path", "label", vector_to_array("projected").alias("pca"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    along = projected.select(Summarizer.variance(array_to_vector("pca"))).first()[0].toArray()
    total = float(np.trace(cov))  # the sum of the features' variances
    reported = [float(v) for v in explained[:k]]
    check_explained_variance(reported, [float(v) / total for v in along])
    return Pca(projected, reported, components)
