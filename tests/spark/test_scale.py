"""A bank of 200,000 files through the job: what reaches the driver is bounded by the model,
never by the number of images.

The ``synthetic`` engine (a vector from each file's bytes, no model) keeps the images
cheap; everything else is the job as it runs: spark-submit, the listing on the executors,
the selection, the feature store, the PCA, every output. The driver runs with a 1 GiB heap
and ``spark.driver.maxResultSize=64m``: a collect of per-image data, or a covariance
fetched whole, would fail the run. The driver's Python process must need about what it
needs for a tenth of the bank.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fruits_contract import outputs
from fruits_contract.input_rule import classify
from tests.conftest import WEIGHTS, spark_submit_job

pytestmark = [pytest.mark.slow, pytest.mark.long]

FILES = 200_000
CLASSES = 100
DRIVER = {"spark.driver.maxResultSize": "64m"}
# Beside the images, the files every bank ends up holding: each must be accounted for.
ODD_FILES = {
    "Class 000/notes.txt": b"not an image",
    "Class 001/._IMG_0001.jpg": b"macOS metadata",
    "Class 002/thumbs/0.jpg": b"a stray sub-folder",
    "loose.jpg": b"not in a class folder",
    "Class 003/empty.jpg": b"",
}


def make_bank(root: Path, files: int) -> dict[str, str]:
    """``files`` tiny distinct files in ``CLASSES`` class folders, and the odd ones: what
    becomes of each (features, error, skipped) by path."""
    training = root / "Training"
    fate = {}
    for index in range(files - len(ODD_FILES)):
        folder = training / f"Class {index % CLASSES:03d}"
        if index < CLASSES:
            folder.mkdir(parents=True)
        path = folder / f"{index}.jpg"
        path.write_bytes(index.to_bytes(4, "little"))
        fate[f"file:{path}"] = "features"
    for relative, data in ODD_FILES.items():
        path = training / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        _, reason = classify(relative)
        fate[f"file:{path}"] = "skipped" if reason else ("error" if not data else "features")
    return fate


def run_synthetic(bank: Path, output: Path, store: Path, work: Path) -> dict:
    from fruits_contract.job_request import JobRequest

    request = JobRequest(
        input_uri=str(bank),
        output_uri=str(output),
        weights_uri=str(WEIGHTS),
        mode="full",
        pca_components=20,
        run_id=output.name,
        engine="synthetic",
        feature_store=str(store),
    )
    done = spark_submit_job(request, work, timeout=1800, driver_memory="1g", conf=DRIVER)
    assert done.returncode == 0, done.stdout[-5000:]
    return json.loads((output / outputs.MODEL_INFO).read_text())


def paths_of(output: Path, dataset: str) -> list[str]:
    return pq.read_table(output / dataset / outputs.PARQUET, columns=["path"])["path"].to_pylist()


def rows_of(output: Path, dataset: str) -> int:
    parts = (output / dataset / outputs.PARQUET).glob("*.parquet")
    return sum(pq.read_metadata(part).num_rows for part in parts)


def test_a_bank_of_200000_files_keeps_the_driver_as_small_as_a_tenth(tmp_path):
    tenth_bank, bank = tmp_path / "tenth", tmp_path / "bank"
    make_bank(tenth_bank, FILES // 10)
    fate = make_bank(bank, FILES)
    small = run_synthetic(tenth_bank, tmp_path / "out-tenth", tmp_path / "store-t", tmp_path)
    info = run_synthetic(bank, tmp_path / "out", tmp_path / "store", tmp_path)
    output = tmp_path / "out"

    # Every file accounted for, by name: listed once, then an image (features or error)
    # or skipped, with its reason.
    counts = info["counts"]
    assert counts["files_listed"] == len(fate) == FILES
    listed = paths_of(output, outputs.LISTING)
    assert sorted(listed) == sorted(fate)
    errors = set(paths_of(output, outputs.ERRORS))
    got = {p: "error" if p in errors else "features" for p in paths_of(output, outputs.METADATA)}
    got |= {p: "skipped" for p in paths_of(output, outputs.SKIPPED)}
    assert got == fate
    features = sum(what == "features" for what in fate.values())
    assert counts["features"] == counts["features_computed"] == features
    assert rows_of(output, outputs.PCA) == features

    # The driver's Python process: what a tenth of the bank needs, within 20%.
    peak, tenth_peak = info["driver_python_peak_mb"], small["driver_python_peak_mb"]
    print(f"driver Python peak: {peak} MiB for {FILES} files, {tenth_peak} MiB for a tenth")
    assert peak <= 1.2 * tenth_peak
