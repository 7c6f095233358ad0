"""Feature stores with synthetic rows, for tests of the table itself (lookups, writers,
maintenance): rows of 1280 equal numbers, keyed like the job's."""

from __future__ import annotations

from pathlib import Path


def file_uri(path: Path) -> str:
    return f"file:{path}"


def open_store(spark, root: Path, sha: str = "0" * 64):
    """The store at ``root`` for a model whose weights have this SHA-256."""
    from fruits_job.feature_store import FeatureStore, Fingerprint

    return FeatureStore(spark, file_uri(root), Fingerprint.of(sha, "onnxruntime", 224))


def feature_rows(spark, paths: list[str], value: float, size: int = 10):
    """path, bytes, modified, features: ``value`` 1280 times for each path."""
    rows = [(p, size, 1000, [value] * 1280) for p in paths]
    return spark.createDataFrame(
        rows, "path string, bytes long, modified long, features array<float>"
    )
