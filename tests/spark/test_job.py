"""The whole job on real JPEGs and broken files, in local Spark."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO
from tests.spark.conftest import PCA_K, PER_CLASS, job_args
from tests.spark.images import BROKEN_CONVERTED, BROKEN_REJECTED

pytestmark = pytest.mark.slow

N_REAL = sum(PER_CLASS.values())
N_IMAGES = N_REAL + len(BROKEN_REJECTED) + len(BROKEN_CONVERTED)
N_FEATURES = N_IMAGES - len(BROKEN_REJECTED)


def _parquet(path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def _csv_dir(path) -> pd.DataFrame:
    return pd.concat(pd.read_csv(part) for part in sorted(path.glob("part-*.csv")))


def test_model_info_counts_and_provenance(full_run):
    info, output = full_run
    assert (output / "_SUCCESS").exists()
    assert info == json.loads((output / "model_info" / "model_info.json").read_text())
    assert info["counts"] == {
        "files_listed": N_IMAGES + 1,
        "skipped_files": 1,
        "images_selected": N_IMAGES,
        "features": N_FEATURES,
        "errors": len(BROKEN_REJECTED),
        # No --feature-store: every image was computed.
        "features_computed": N_FEATURES,
        "features_reused": 0,
    }
    assert info["feature_store"] is None
    assert info["features_exported"] is True
    sums = (REPO / "models" / "SHA256SUMS").read_text().split()
    assert info["weights"]["sha256"] == sums[0]
    assert info["versions"]["tensorflow"] != "not installed"
    assert info["stages"]["features"]["images_per_second"] > 0
    assert info["pca_components"] == PCA_K and info["run_id"] == "test-full"


def test_features_are_1280_d_real_and_the_same_in_csv(full_run):
    _, output = full_run
    features = _parquet(output / "features" / "parquet")
    assert list(features.columns) == ["path", "label", "features"]
    assert len(features) == N_FEATURES
    matrix = np.stack(features["features"])
    assert matrix.shape == (N_FEATURES, 1280)
    assert np.isfinite(matrix).all() and (matrix >= 0).all()  # ReLU6 + average pooling
    assert (matrix.std(axis=0) > 1e-3).sum() > 500  # not constant across images
    table = _csv_dir(output / "features" / "csv")
    assert list(table.columns) == ["path", "label"] + [f"f{i:04d}" for i in range(1280)]
    merged = features.merge(table, on=["path", "label"])
    assert len(merged) == N_FEATURES
    assert np.allclose(
        np.stack(merged["features"]), merged[table.columns[2:]].to_numpy(), atol=1e-6
    )


def test_a_bananas_nearest_neighbour_is_a_banana(full_run):
    _, output = full_run
    features = _parquet(output / "features" / "parquet")
    matrix = np.stack(features["features"])
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -1)
    labels = features["label"].to_numpy()
    bananas = np.flatnonzero(labels == "Banana")
    assert len(bananas) == PER_CLASS["Banana"]
    neighbours = labels[similarity[bananas].argmax(axis=1)]
    assert (neighbours == "Banana").all(), neighbours
    # And the classes are separable overall: 1-NN accuracy on the real images.
    real = ~features["path"].str.contains("Lemon/(?:png_named|grayscale|cmyk|large)")
    nn = labels[similarity.argmax(axis=1)]
    assert (nn[real] == labels[real]).mean() >= 0.9


def test_pca_outputs_and_variance(full_run):
    info, output = full_run
    pca = _parquet(output / "pca" / "parquet")
    assert list(pca.columns) == ["path", "label", "pca"]
    assert len(pca) == N_FEATURES
    assert np.stack(pca["pca"]).shape == (N_FEATURES, PCA_K)
    explained = np.array(info["explained_variance"])
    assert len(explained) == PCA_K
    assert (np.diff(explained) <= 1e-12).all() and (explained > 0).all()
    assert 0 < explained.sum() <= 1 + 1e-9
    assert info["variance_kept"] == pytest.approx(explained.sum())
    with open(output / "model_info" / "variance.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["component"]) for r in rows] == list(range(1, PCA_K + 1))
    assert float(rows[-1]["cumulative_variance"]) == pytest.approx(explained.sum(), abs=1e-9)
    table = _csv_dir(output / "pca" / "csv")
    assert list(table.columns) == ["path", "label"] + [f"pc{i:03d}" for i in range(1, PCA_K + 1)]
    assert len(table) == N_FEATURES

    # Against numpy on the run's own features: the covariance's top eigenvalues, and each
    # image projected on their eigenvectors (MLlib does not centre; a sign is arbitrary).
    merged = _parquet(output / "features" / "parquet").merge(pca, on=["path", "label"])
    assert len(merged) == N_FEATURES
    x = np.stack(merged["features"]).astype(np.float64)
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
    order = np.argsort(values)[::-1][:PCA_K]
    assert explained == pytest.approx(values[order] / values.sum(), rel=1e-6, abs=1e-9)
    projected = x @ vectors[:, order]
    got = np.stack(merged["pca"])
    signs = np.sign((projected * got).sum(axis=0))
    assert np.abs(got - projected * signs).max() <= 1e-6 * np.abs(projected).max()


def test_each_broken_file_is_reported_and_the_rest_converted(full_run):
    _, output = full_run
    with open(output / "summary" / "errors.csv") as f:
        errors = {row["path"].rsplit("/", 1)[1]: row for row in csv.DictReader(f)}
    assert set(errors) == BROKEN_REJECTED
    listed = _parquet(output / "errors" / "parquet")
    assert set(listed["path"].str.rsplit("/", n=1).str[1]) == BROKEN_REJECTED
    assert len(_csv_dir(output / "errors" / "csv")) == len(BROKEN_REJECTED)
    assert errors["empty.jpg"]["reason"] == "empty file (0 bytes)"
    assert errors["empty.jpg"]["bytes"] == "0"
    assert "not an image" in errors["text.jpg"]["reason"]
    assert "truncated" in errors["truncated.jpg"]["reason"]
    assert {row["label"] for row in errors.values()} == {"Lemon"}
    features = _parquet(output / "features" / "parquet")
    names = set(features["path"].str.rsplit("/", n=1).str[1])
    assert names >= BROKEN_CONVERTED
    metadata = _parquet(output / "metadata" / "parquet")
    assert list(metadata.columns) == ["path", "label", "bytes", "modified", "status"]
    assert len(metadata) == N_IMAGES
    assert metadata["status"].value_counts().to_dict() == {
        "ok": N_FEATURES,
        "error": len(BROKEN_REJECTED),
    }
    assert len(_csv_dir(output / "metadata" / "csv")) == N_IMAGES
    assert not any("README" in p for p in metadata["path"])
    assert not any("/Test/" in p for p in metadata["path"])


def test_same_features_whatever_the_partitions_and_batches(spark, job_input, full_run, tmp_path):
    from fruits_job.job import parse as parse_args
    from fruits_job.job import run

    _, first_output = full_run
    args = parse_args(
        job_args(
            job_input,
            tmp_path / "again",
            "--mode",
            "full",
            "--pca-components",
            str(PCA_K),
            "--partitions",
            "3",
            "--batch-size",
            "5",
            "--export-features",
        )
    )
    run(spark, args)
    first = _parquet(first_output / "features" / "parquet")
    again = _parquet(tmp_path / "again" / "features" / "parquet")
    merged = first.merge(again, on=["path", "label"])
    assert len(merged) == N_FEATURES
    diff = np.abs(np.stack(merged["features_x"]) - np.stack(merged["features_y"]))
    assert diff.max() <= 1e-5


def test_errors_summary_has_a_header_when_nothing_failed_and_no_export_unless_asked(
    spark, job_input, tmp_path
):
    from fruits_job.job import parse as parse_args
    from fruits_job.job import run

    args = parse_args(
        job_args(
            job_input,
            tmp_path / "apples",
            "--mode",
            "apples",
            "--pca-components",
            "3",
            "--limit",
            "4",
        )
    )
    info = run(spark, args)
    assert info["counts"]["errors"] == 0 and info["counts"]["images_selected"] == 4
    assert (tmp_path / "apples" / "summary" / "errors.csv").read_text() == (
        "path,label,bytes,reason\n"
    )
    # Not asked to export: the vectors are in no output of the run.
    assert info["features_exported"] is False
    assert not (tmp_path / "apples" / "features").exists()


def test_the_tensorflow_reference_agrees_with_the_default_engine(
    spark, job_input, full_run, tmp_path
):
    from fruits_contract.engines import DEFAULT_ENGINE
    from fruits_job.job import parse as parse_args
    from fruits_job.job import run

    info, first_output = full_run
    assert info["engine"] == DEFAULT_ENGINE
    args = parse_args(
        job_args(
            job_input,
            tmp_path / "tf",
            "--mode",
            "full",
            "--pca-components",
            str(PCA_K),
            "--engine",
            "tensorflow",
            "--export-features",
        )
    )
    assert run(spark, args)["engine"] == "tensorflow"
    merged = _parquet(first_output / "features" / "parquet").merge(
        _parquet(tmp_path / "tf" / "features" / "parquet"), on=["path", "label"]
    )
    assert len(merged) == N_FEATURES
    a, b = np.stack(merged["features_x"]), np.stack(merged["features_y"])
    cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() >= 0.9999
