"""Numbers the report shows: variance thresholds and a 1-nearest-neighbour score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

VARIANCE_TARGETS = (0.80, 0.90, 0.95)
# Leave-one-out 1-NN is O(n²): this many images keep it to a few seconds and ~50 MB.
KNN_MAX_IMAGES = 5000
KNN_SEED = 20240805
# Rows of the distance matrix computed at once: bounds memory to chunk × n floats.
KNN_CHUNK = 512
# Cumulative variance is summed in floating point: 0.8999999999 means "90 %".
_EPS = 1e-9


def components_needed(cumulative: Sequence[float], target: float) -> int | None:
    """Number of leading components whose cumulative explained variance reaches ``target``.

    None when even all K components stay below it.
    """
    for index, value in enumerate(cumulative):
        if value + _EPS >= target:
            return index + 1
    return None


@dataclass(frozen=True)
class NeighbourScore:
    accuracy: float
    images: int  # images scored (the sample when the run is larger)
    total: int  # images with PCA features in the run
    classes: int  # classes in the scored images
    # Expected score when the neighbour is a random other image: what "no signal" gets.
    chance: float
    metric: str


def sample_indices(count: int, limit: int = KNN_MAX_IMAGES, seed: int = KNN_SEED) -> np.ndarray:
    """A deterministic, sorted subset of range(count) of at most ``limit`` indices."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


def loo_1nn_accuracy(
    vectors: np.ndarray,
    labels: Sequence[str] | np.ndarray,
    *,
    limit: int = KNN_MAX_IMAGES,
    chunk: int = KNN_CHUNK,
) -> NeighbourScore:
    """Leave-one-out 1-NN accuracy with euclidean distance.

    Each image is given the class of its nearest other image. Euclidean distance because
    MLlib's PCA projects without centring the data: euclidean distances do not depend on
    that offset, cosine similarities would. Callers that pass vectors in a stable order
    (e.g. sorted by path) get the same sample, hence the same score, on every call.
    """
    x = np.asarray(vectors, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"vectors {x.shape} and labels ({len(y)}) do not match")
    total = len(x)
    if total < 2:
        raise ValueError("leave-one-out 1-NN needs at least 2 images")
    keep = sample_indices(total, limit)
    x, y = x[keep], y[keep]
    _, codes = np.unique(y, return_inverse=True)
    squared = np.einsum("ij,ij->i", x, x)
    nearest = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk]
        # |a-b|² = |a|² - 2ab + |b|²; the |a|² term is constant per row, so left out.
        distances = squared[None, :] - 2.0 * block @ x.T
        rows = np.arange(len(block))
        distances[rows, start + rows] = np.inf  # leave the image itself out
        nearest[start : start + len(block)] = distances.argmin(axis=1)
    accuracy = float(np.mean(codes[nearest] == codes))
    sizes = np.bincount(codes).astype(np.float64)
    n = float(len(codes))
    return NeighbourScore(
        accuracy=accuracy,
        images=len(x),
        total=total,
        classes=int(codes.max()) + 1,
        chance=float(np.sum(sizes / n * (sizes - 1) / (n - 1))),
        metric="euclidean",
    )
