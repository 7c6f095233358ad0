"""The report of real job runs (spark-submit on real Fruits-360 JPEGs and broken files)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fruits_features.report import build_report
from tests.report.conftest import BROKEN, CLASSES, PCA_K, PER_CLASS
from tests.report.html_checks import (
    embedded_png_bytes,
    embedded_pngs,
    external_references,
    visible_text,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_report(real_run, tmp_path_factory):
    files = build_report(real_run, tmp_path_factory.mktemp("real_report"))
    info = json.loads((real_run / "model_info" / "model_info.json").read_text())
    return files, info, files.html.read_text()


def test_numbers_on_the_page_are_those_of_model_info(real_report):
    files, info, page = real_report
    text = visible_text(page)
    counts = info["counts"]
    # The run really is what the test built, so the page is checked against known values.
    assert counts["images_selected"] == len(CLASSES) * PER_CLASS + len(BROKEN)
    assert counts["errors"] == len(BROKEN) and counts["features"] == len(CLASSES) * PER_CLASS
    assert f"Images selected {counts['images_selected']}" in text
    assert f"With features {counts['features']}" in text
    assert f"Errors {counts['errors']}" in text
    assert f"Classes {len(CLASSES)}" in text
    assert f"Variance at K={PCA_K} {info['variance_kept']:.1%}" in text
    assert f"kept by K={PCA_K} {info['variance_kept']:.1%}" in text
    assert info["weights"]["sha256"] in text
    assert f"Run {info['run_id']} with errors ({len(BROKEN)})" in text
    for name, version in info["versions"].items():
        assert f"{name} {version}" in text
    summary = json.loads(files.summary.read_text())
    assert summary["counts"] == counts and summary["classes"] == len(CLASSES)


def test_every_failed_file_is_listed_with_its_reason(real_report, real_run):
    _, _, page = real_report
    text = visible_text(page)
    with (real_run / "summary" / "errors.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in rows) == sorted(BROKEN)
    for row in rows:
        name = row["path"].rsplit("/", 1)[-1]
        # One table row: file name, full path, class, size, reason, in that order.
        assert f"{name} {row['path']} {row['label']} {int(row['bytes']):,} {row['reason']}" in text


def test_plots_are_embedded_and_nothing_is_loaded_from_outside(real_report):
    files, _, page = real_report
    images = embedded_pngs(page)
    assert len(images) == 3
    assert external_references(page) == []
    # The PNG files next to the page are the same pictures.
    assert sorted(embedded_png_bytes(page)) == sorted(p.read_bytes() for p in files.plots)


@pytest.mark.long
def test_random_weights_score_clearly_lower(real_run, random_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    real = json.loads(build_report(real_run, out / "real").summary.read_text())
    random = json.loads(build_report(random_run, out / "random").summary.read_text())
    print(
        f"1-NN real {real['knn']['accuracy']:.3f} random {random['knn']['accuracy']:.3f}; "
        f"PC1 share real {real['pc1_share']:.3f} random {random['pc1_share']:.3f}"
    )
    assert real["knn"]["images"] == random["knn"]["images"] == len(CLASSES) * PER_CLASS
    assert real["knn"]["accuracy"] >= 0.9
    assert real["knn"]["accuracy"] - random["knn"]["accuracy"] >= 0.2
    # The second signal: untrained features vary along one direction.
    assert random["pc1_share"] > 0.5 > real["pc1_share"]
    assert (real["quality"], random["quality"]) == ("good", "doubtful")
    page = (out / "random" / "report.html").read_text()
    assert "PC 1 alone carries" in visible_text(page)


# Seeds besides the fixture's 0: the verdict must not rest on one lucky initialisation.
OTHER_SEEDS = (1, 2, 3, 4)


@pytest.mark.long
def test_any_random_weights_get_the_doubtful_verdict(real_run, tmp_path):
    """Untrained MobileNetV2 from several seeds, on the same real images: the report's
    quality verdict (1-NN of the K-d PCA, PC1's share) says doubtful for every one."""
    import numpy as np
    import pyarrow.parquet as pq

    from fruits_features.report.metrics import loo_1nn_accuracy
    from fruits_features.report.verdicts import quality_verdict
    from tests.conftest import REPO

    # The images the real run computed features for (not the broken files beside them).
    real = pq.read_table(real_run / "pca" / "parquet").to_pandas().sort_values("path")
    paths = [p.removeprefix("file:") for p in real["path"]]
    assert all(Path(p).is_file() for p in paths) and len(paths) == len(CLASSES) * PER_CLASS
    features = tmp_path / "features.npz"
    # A subprocess keeps TensorFlow out of the test process; the job's own preprocessing.
    script = (
        "import sys, numpy as np, keras\n"
        "from fruits_job.preprocess import decode_image, to_model_input\n"
        "out, paths = sys.argv[1], sys.argv[2:]\n"
        "pixels = to_model_input(np.stack([decode_image(open(p, 'rb').read(), 224)"
        " for p in paths]))\n"
        "found = {}\n"
        f"for seed in {OTHER_SEEDS!r}:\n"
        "    keras.utils.set_random_seed(seed)\n"
        "    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3),"
        " include_top=False, weights=None, pooling='avg')\n"
        "    found[str(seed)] = model.predict(pixels, batch_size=16, verbose=0)\n"
        "np.savez(out, **found)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(features), *paths],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO / "spark")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    labels = real["label"].to_numpy()
    real_score = loo_1nn_accuracy(np.stack(real["pca"]), real["label"].to_numpy())
    for seed, x in np.load(features).items():
        x = x.astype(np.float64)
        values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
        order = np.argsort(values)[::-1][:PCA_K]
        score = loo_1nn_accuracy(x @ vectors[:, order], labels)
        pc1 = float(values[order[0]] / values.sum())
        print(f"seed {seed}: 1-NN {score.accuracy:.3f}, PC1 share {pc1:.3f}")
        assert quality_verdict(score, pc1)[1] == "doubtful", (seed, score.accuracy, pc1)
        assert score.accuracy < real_score.accuracy, seed
