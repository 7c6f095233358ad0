"""Real job runs for the report's tests: one input folder, one run per weights file.

The job runs through spark-submit in a subprocess, exactly as a user runs it, so the
report is tested against what the job really writes. Each run takes ~40 s on 2 cores:
session-scoped, and never two at a time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, WEIGHTS, spark_submit_job

# Six apple varieties: colour alone does not tell them apart, so the features must. On
# Fruits-360, untrained MobileNetV2 weights still sort many fruits by colour (1-NN 0.75-0.95
# for most seeds on mixed fruits); on these apples with seed 0 they score ~0.6 against
# ~0.98 for the pretrained weights (measured on the first 8 images of each class).
CLASSES = (
    "Apple Braeburn",
    "Apple Golden 1",
    "Apple Granny Smith",
    "Apple Red 2",
    "Apple Red 3",
    "Apple Red Yellow 1",
)
PER_CLASS = 8
PCA_K = 10
BROKEN_CLASS = "Apple Red 2"
# file name → content; both must end up in errors/ (and the summary's errors.csv).
BROKEN = {
    "empty.jpg": b"",
    "not_a_picture.jpg": b"this is a text file, not a JPEG\n",
}


def build_input(root: Path) -> Path:
    for label in CLASSES:
        folder = root / "Training" / label
        folder.mkdir(parents=True)
        for image in sorted((SAMPLE / "Training" / label).glob("*.jpg"))[:PER_CLASS]:
            shutil.copy(image, folder / image.name)
    for name, data in BROKEN.items():
        (root / "Training" / BROKEN_CLASS / name).write_bytes(data)
    return root


def run_job(input_dir: Path, output: Path, weights: Path, run_id: str) -> dict:
    """Run the real job with spark-submit; returns its model_info."""
    from fruits_contract.job_request import JobRequest

    request = JobRequest(
        input_uri=str(input_dir),
        output_uri=str(output),
        weights_uri=str(weights),
        mode="full",
        pca_components=PCA_K,
        run_id=run_id,
    )
    done = spark_submit_job(request, output.parent / f"{output.name}-zip")
    assert done.returncode == 0, done.stdout[-4000:]
    return json.loads((output / "model_info" / "model_info.json").read_text())


@pytest.fixture(scope="session")
def report_input(tmp_path_factory) -> Path:
    return build_input(tmp_path_factory.mktemp("report_input"))


@pytest.fixture(scope="session")
def real_run(report_input, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("report_runs") / "real"
    run_job(report_input, output, WEIGHTS, "report-real")
    return output


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory) -> Path:
    """MobileNetV2 with untrained weights, saved in the same format as the real file."""
    path = tmp_path_factory.mktemp("weights") / "random.weights.h5"
    # A subprocess keeps TensorFlow out of the test process.
    script = (
        "import sys, keras\n"
        # A fixed seed: the margin asserted in test_real_run.py was measured with it.
        "keras.utils.set_random_seed(0)\n"
        "model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False,"
        " weights=None, pooling='avg')\n"
        "model.save_weights(sys.argv[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return path


@pytest.fixture(scope="session")
def random_run(report_input, random_weights, real_run, tmp_path_factory) -> Path:
    # Depends on real_run only to order the two job runs, never in parallel.
    output = tmp_path_factory.mktemp("report_runs") / "random"
    run_job(report_input, output, random_weights, "report-random-weights")
    return output
