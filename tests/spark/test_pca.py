"""The job's PCA against numpy's, with and without a native LAPACK, fitted again and again.

MLlib's own PCA gave wrong components here, intermittently, on netlib's pure-Java LAPACK
(spark/fruits_job/pca.py says why). The job's PCA must be right on any machine: with netlib
forced onto pure Java (its native library path pointed at a missing file, as on a machine
without OpenBLAS) and with OpenBLAS, ten fits in a row, on real features of the 300 mini
images (fewer images than dimensions: a rank-deficient covariance) and of 1,720 images.
"""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, SAMPLE, WEIGHTS

pytestmark = pytest.mark.slow

K = 50
REPEATS = 10
# Debian's libopenblas0-pthread (scripts/check_prereqs.sh test checks it is there).
OPENBLAS = f"/usr/lib/{platform.machine()}-linux-gnu/openblas-pthread/libopenblas.so.0"
MISSING = "/nonexistent/libopenblas.so.0"


def _features(paths: list[Path], images: list) -> pa.Table:
    """Real MobileNetV2 features, computed in this process by the job's default engine."""
    from fruits_contract.engines import DEFAULT_ENGINE
    from fruits_job.engines import build_engine, prepare_model
    from fruits_job.preprocess import to_model_input

    engine = build_engine(
        DEFAULT_ENGINE, prepare_model(DEFAULT_ENGINE, WEIGHTS.read_bytes(), 224), threads=2
    )
    vectors = []
    for start in range(0, len(images), 32):
        vectors.extend(engine(to_model_input(np.stack(images[start : start + 32]))))
    return pa.table(
        {
            "path": [str(p) for p in paths],
            "label": [p.parent.name for p in paths],
            "features": [v.astype(np.float32).tolist() for v in vectors],
        }
    )


@pytest.fixture(scope="module")
def feature_sets(tmp_path_factory) -> dict[str, Path]:
    from PIL import Image

    from fruits_job.preprocess import decode_image

    everything = sorted((SAMPLE / "Training").rglob("*.jpg"))
    # Mode mini's images: 300 Apple photos, the classes taking turns (selection.py).
    apples = [p for p in everything if p.parent.name.startswith("Apple")]
    by_class = [
        sorted(p for p in apples if p.parent == c) for c in sorted({a.parent for a in apples})
    ]
    mini = [q[d] for d in range(max(map(len, by_class))) for q in by_class if d < len(q)][:300]
    # Larger than 1280 (a full-rank covariance): every sample image, mirrored, flipped, turned.
    larger_paths, larger_images = [], []
    for transpose in (None, *(Image.Transpose(t) for t in (0, 1, 2))):
        for path in everything:
            with Image.open(path) as image:
                picture = image.convert("RGB")
                if transpose is not None:
                    picture = picture.transpose(transpose)
            larger_paths.append(path.with_name(f"{transpose}_{path.name}"))
            larger_images.append(np.asarray(picture.resize((224, 224), Image.BILINEAR)))
    folder = tmp_path_factory.mktemp("pca_features")
    sets = {
        "mini": _features(mini, [decode_image(p.read_bytes(), 224) for p in mini]),
        "larger": _features(larger_paths, larger_images),
    }
    assert sets["mini"].num_rows == 300 and sets["larger"].num_rows > 1280
    for name, table in sets.items():
        pq.write_table(table, folder / f"{name}.parquet")
    return {name: folder / f"{name}.parquet" for name in sets}


def numpy_pca(features: Path) -> tuple[np.ndarray, np.ndarray]:
    """The reference: explained variance and components of the covariance's eigenproblem."""
    column = pq.read_table(features).column("features").combine_chunks()
    matrix = column.flatten().to_numpy().reshape(len(column), -1).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(matrix, rowvar=False))
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues = np.clip(eigenvalues[order], 0, None)
    return eigenvalues[:K] / eigenvalues.sum(), eigenvectors[:, order[:K]].T


def fit_repeatedly(features: list[Path], library: str, work: Path) -> dict:
    from fruits_features.job_invocation import find_spark_submit, local_spark_env
    from fruits_features.job_package import build_job_zip

    options = (
        f"-Ddev.ludovic.netlib.blas.nativeLibPath={library} "
        f"-Ddev.ludovic.netlib.lapack.nativeLibPath={library}"
    )
    out = work / "fits.json"
    done = subprocess.run(
        [
            str(find_spark_submit()),
            *("--master", "local[2]", "--driver-memory", "2g"),
            *("--conf", "spark.ui.enabled=false"),
            *("--conf", f"spark.driver.extraJavaOptions={options}"),
            *("--py-files", str(build_job_zip(REPO, work))),
            str(Path(__file__).with_name("pca_repeat.py")),
            *(",".join(map(str, features)), str(K), str(REPEATS), str(out)),
        ],
        env=local_spark_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.long
@pytest.mark.parametrize(
    ("library", "lapack"),
    [(MISSING, "F2jLAPACK"), (OPENBLAS, "JNILAPACK")],
    ids=["pure-java", "openblas"],
)
def test_every_fit_matches_numpy(feature_sets, library, lapack, tmp_path):
    if library == OPENBLAS:
        assert Path(OPENBLAS).is_file(), "apt-get install libopenblas0-pthread"

    result = fit_repeatedly(list(feature_sets.values()), library, tmp_path)

    assert result["lapack"].endswith(lapack), result["lapack"]
    for name, features in feature_sets.items():
        explained, components = numpy_pca(features)
        fits = result["fits"][str(features)]
        assert len(fits) == REPEATS
        for attempt, fit in enumerate(fits):
            gap = np.abs(np.array(fit["explained"]) - explained).max()
            assert gap < 1e-6, f"{name}, fit {attempt}: explained variance off by {gap:.2e}"
            cosines = np.abs(np.sum(np.array(fit["components"]) * components, axis=1))
            assert cosines.min() > 0.9999, f"{name}, fit {attempt}: cosines {cosines.min():.6f}"
