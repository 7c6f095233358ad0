"""Every engine against the Keras model itself, on real Fruits-360 images."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from fruits_contract.engines import OFFERED
from fruits_job.engines import (
    EXPORT_CACHE_ENV,
    EngineUnavailableError,
    build_engine,
    build_keras_model,
    check_engine_installed,
    prepare_model,
)
from fruits_job.preprocess import decode_image, to_model_input
from tests.conftest import SAMPLE, WEIGHTS

pytestmark = pytest.mark.slow

CLASSES = ["Banana", "Apple Braeburn", "Apple Golden 1", "Kiwi", "Strawberry", "Lemon", "Orange"]


@pytest.fixture(scope="module")
def images():
    paths = [p for c in CLASSES for p in sorted((SAMPLE / "Training" / c).glob("*.jpg"))[:5]]
    labels = np.array([p.parent.name for p in paths])
    return to_model_input(np.stack([decode_image(p.read_bytes(), 224) for p in paths])), labels


@pytest.fixture(scope="module")
def reference(images):
    """What Keras computes: the ground truth every engine's graph must reproduce."""
    model = build_keras_model(str(WEIGHTS), 224)
    return model.predict(images[0], batch_size=len(images[0]), verbose=0)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _nearest(features: np.ndarray) -> np.ndarray:
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return similarity.argmax(axis=1)


def test_reference_features_are_real(images, reference):
    pixels, labels = images
    assert reference.shape == (len(pixels), 1280)
    # Real ImageNet weights separate these fruits: 1-NN is right almost always.
    assert (labels[_nearest(reference)] == labels).mean() >= 0.9


# The synthetic engine has no model to match: its own tests say what it computes.
@pytest.mark.parametrize("engine", OFFERED)
def test_engine_matches_keras(engine, images, reference, tmp_path, monkeypatch):
    check_engine_installed(engine)
    pixels, _ = images
    # A cache of its own: the graph checked is exported now, by the code under test.
    monkeypatch.setenv(EXPORT_CACHE_ENV, str(tmp_path))
    model = prepare_model(engine, WEIGHTS.read_bytes(), 224)
    assert [p.read_bytes() for p in tmp_path.iterdir()] == [model]
    features = build_engine(engine, model, threads=1)(pixels)
    assert features.shape == reference.shape
    assert _cosine(features, reference).min() >= 0.9999
    assert (_nearest(features) == _nearest(reference)).all()
    # Batch composition does not change an image's features.
    alone = build_engine(engine, model, threads=1)(pixels[3:4])
    assert np.abs(alone[0] - features[3]).max() <= 1e-5


def test_a_missing_engine_is_refused_with_the_package_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a),
    )
    with pytest.raises(EngineUnavailableError, match="'onnxruntime' needs the Python package"):
        check_engine_installed("onnxruntime")


def test_the_synthetic_engine_is_a_function_of_each_files_bytes():
    contents = [
        p.read_bytes() for c in CLASSES for p in sorted((SAMPLE / "Training" / c).glob("*.jpg"))[:5]
    ]
    infer = build_engine("synthetic", prepare_model("synthetic", b"", 224), threads=1)
    features = infer(contents)
    assert features.shape == (len(contents), 1280) and features.dtype == np.float32
    # The same bytes give the same vector whatever the batch; other bytes another one.
    assert np.array_equal(infer(contents[3:4])[0], features[3])
    assert len({row.tobytes() for row in features}) == len(set(contents))


def test_the_export_cache_is_private_to_its_user(tmp_path, monkeypatch):
    """A cache anyone can write (a predictable folder in the shared /tmp) would let another
    account plant the graph a run broadcasts. The cache is the user's own (XDG), made
    0700, and a cache folder others can write is not used."""
    import dataclasses
    import stat
    import tempfile

    from fruits_job import engines

    exports = []

    def export(weights_path, image_size):
        exports.append(image_size)
        return b"graph of the code under test"

    spec = dataclasses.replace(engines.ENGINES["onnxruntime"], export=export)
    monkeypatch.setitem(engines.ENGINES, "onnxruntime", spec)
    monkeypatch.delenv(EXPORT_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    # The shared temporary folder, where the cache used to be.
    shared = tmp_path / "shared-tmp"
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    planted = shared / "fruits_job_cache"
    planted.mkdir(parents=True)
    weights = b"weights"
    first = prepare_model("onnxruntime", weights, 224)
    private = tmp_path / "home-cache" / "fruits-features" / "exports"
    (name,) = [p.name for p in private.iterdir()]
    # Another account plants a graph under the name the next run looks for.
    (planted / name).write_bytes(b"planted")

    assert prepare_model("onnxruntime", weights, 224) == first == b"graph of the code under test"
    assert exports == [224]  # the second one from the private cache
    assert stat.S_IMODE(private.stat().st_mode) == 0o700

    # A cache folder others may write is refused: the graph is exported again.
    open_cache = tmp_path / "open-cache"
    open_cache.mkdir()
    open_cache.chmod(0o777)
    (open_cache / name).write_bytes(b"planted")
    monkeypatch.setenv(EXPORT_CACHE_ENV, str(open_cache))
    assert prepare_model("onnxruntime", weights, 224) == b"graph of the code under test"
    assert exports == [224, 224]
