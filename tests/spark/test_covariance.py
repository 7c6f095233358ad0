"""The PCA's covariance: numpy blocks merged exactly, whatever the split into partitions."""

from __future__ import annotations

import numpy as np
import pytest

from fruits_job.pca import Moments, covariance


def test_merged_blocks_give_numpys_covariance():
    rng = np.random.default_rng(7)
    # Large mean, small spread: where a one-pass sum of squares would lose digits.
    rows = 1000.0 + rng.normal(size=(500, 16)) * rng.uniform(0.01, 3.0, size=16)
    merged = Moments.empty(16)
    for block in np.split(rows, [0, 1, 7, 7, 200, 499]):  # empty, single-row and big blocks
        if len(block):
            merged = merged.merge(Moments.of_block(block))
    assert merged.count == 500
    np.testing.assert_allclose(merged.covariance(), np.cov(rows, rowvar=False), rtol=1e-9)


@pytest.mark.parametrize("partitions", [1, 7])
def test_spark_covariance_matches_numpy_with_empty_partitions(spark, partitions):
    rng = np.random.default_rng(partitions)
    rows = rng.exponential(size=(5, 1280)).astype(np.float32)
    frame = spark.createDataFrame(
        [([float(v) for v in row],) for row in rows], "features array<float>"
    ).repartition(partitions)  # 7 partitions for 5 rows: some are empty
    np.testing.assert_allclose(
        covariance(frame, "features", 1280),
        np.cov(rows.astype(np.float64), rowvar=False),
        rtol=1e-9,
        atol=1e-12,
    )


def test_a_vector_of_the_wrong_length_is_refused(spark):
    frame = spark.createDataFrame([([1.0, 2.0],), ([3.0, 4.0],)], "features array<float>")
    with pytest.raises(Exception, match="features must be 3 numbers per image"):
        covariance(frame, "features", 3)
