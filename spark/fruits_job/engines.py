"""Inference engines: MobileNetV2 (ImageNet weights, no top, average pooling) → 1280-d.

Every engine runs a graph made on the driver from the Keras model and the run's
weights file: the driver prepares one *model artifact* (bytes), Spark
broadcasts it, and each Python worker builds its engine from it once.

| engine      | artifact broadcast                            | worker needs |
| ----------- | --------------------------------------------- | ------------ |
| tensorflow  | the Keras model frozen to a TensorFlow graph  | tensorflow   |
| onnxruntime | ONNX graph (tf2onnx export)                   | onnxruntime  |
| openvino    | ONNX graph (tf2onnx export)                   | openvino     |

TensorFlow is the reference: tests hold every engine to the Keras model itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from fruits_contract.engines import ENGINES as DECLARED
from fruits_contract.engines import FEATURE_DIM
from fruits_job.code_digest import code_digest

log = logging.getLogger("fruits_job")

# TensorFlow's C++ banner lines would otherwise fill every executor log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ONNX_OPSET = 17
_INPUT, _OUTPUT = "images", "features"

Engine = Callable[[np.ndarray], np.ndarray]


class EngineUnavailableError(RuntimeError):
    """The engine's library is not installed where the job runs."""


def check_engine_installed(name: str) -> None:
    """Fail early, on the driver, with the package to install."""
    spec = DECLARED[name]
    wanted = dict.fromkeys((*spec.driver_modules, *spec.worker_modules))
    missing = [m for m in wanted if importlib.util.find_spec(m) is None]
    if missing:
        raise EngineUnavailableError(
            f"engine {name!r} needs the Python package(s) {', '.join(missing)}, "
            "which are not installed (see requirements.txt)"
        )


def build_keras_model(weights_path: str, image_size: int):
    import keras

    model = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3),
        include_top=False,
        weights=None,
        pooling="avg",
    )
    model.load_weights(weights_path)
    return model


def _keras_function(weights_path: str, image_size: int):
    import tensorflow as tf

    model = build_keras_model(weights_path, image_size)

    # A traced graph with a free batch dimension: no retracing for the last,
    # smaller batch. The named tensors are what the frozen graph is fed and fetched by.
    @tf.function(
        input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32, _INPUT)],
        reduce_retracing=True,
    )
    def infer(images):
        return {"features": tf.identity(model(images, training=False), name=_OUTPUT)}

    return infer


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"


def export_tensorflow_graph(weights_path: str, image_size: int) -> bytes:
    """The Keras model with these weights frozen into a TensorFlow GraphDef.

    With the weights as constants Grappler folds every batch-norm into its
    convolution: ~1.4x faster than calling the Keras model, same features
    within float rounding (tests/spark/test_engines.py).
    """
    # TensorFlow's own freezing helper (tf2onnx uses it too); no public alias in TF 2.
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    infer = _keras_function(weights_path, image_size)
    frozen = convert_variables_to_constants_v2(infer.get_concrete_function())
    return frozen.graph.as_graph_def().SerializeToString()


def export_onnx(weights_path: str, image_size: int) -> bytes:
    """The Keras model with these weights as an ONNX graph (fixed image size, free batch)."""
    import tf2onnx

    infer = _keras_function(weights_path, image_size)
    onnx_model, _ = tf2onnx.convert.from_function(
        infer, input_signature=infer.input_signature, opset=ONNX_OPSET
    )
    return onnx_model.SerializeToString()


# Where exports are cached (default: $XDG_CACHE_HOME or ~/.cache, fruits-features/exports);
# tests point it at a folder of their own, so that what they check is an export of the
# code under test.
EXPORT_CACHE_ENV = "FRUITS_JOB_EXPORT_CACHE"


def export_cache_dir() -> Path | None:
    """The export cache: a folder only this user can write, or None (no cache).

    The run broadcasts what it finds there: a folder others can write (a predictable name
    in the shared /tmp) would let another account plant the graph every image goes through.
    """
    configured = os.environ.get(EXPORT_CACHE_ENV)
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder = Path(configured) if configured else Path(base) / "fruits-features" / "exports"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = folder.stat()
    except (OSError, RuntimeError) as error:  # no home, a read-only disk
        log.warning("model exports not cached: %s", error)
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        log.warning("model exports not cached: %s is writable by other users", folder)
        return None
    return folder


def prepare_model(engine: str, weights: bytes, image_size: int) -> bytes:
    """Driver side: the graph to broadcast for this engine.

    Exports are cached on local disk by weights SHA-256, image size, converter versions
    and the digest of this module's code: local reruns (benchmarks) export once.
    """
    spec = ENGINES[engine]
    if spec.export is _no_export:
        return b""
    sha = hashlib.sha256(weights).hexdigest()
    versions = f"tf{_version('tensorflow-cpu')}-tf2onnx{_version('tf2onnx')}"
    cache_dir = export_cache_dir()
    code = code_digest((__name__,))[:12]
    name = f"mobilenet_v2-{sha[:16]}-{image_size}px-{versions}-{code}-{spec.artifact}"
    cached = cache_dir / name if cache_dir else None
    if cached is not None and cached.is_file():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        weights_path = os.path.join(tmp, "mobilenet_v2.weights.h5")
        Path(weights_path).write_bytes(weights)
        graph = spec.export(weights_path, image_size)
    if cached is None:
        return graph
    partial = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
    partial.write_bytes(graph)
    partial.replace(cached)
    return graph


def _tensorflow_engine(model: bytes, threads: int) -> Engine:
    import tensorflow as tf

    # Must happen before TensorFlow runs its first op in this process; Spark's
    # OMP_NUM_THREADS=1 is ignored by TF, so without this every worker takes
    # every core and they fight.
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this worker: the first setting stands
    graph = tf.compat.v1.GraphDef.FromString(model)
    imported = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph, name=""), [])
    infer = imported.prune(feeds=f"{_INPUT}:0", fetches=f"{_OUTPUT}:0")
    return lambda batch: infer(tf.constant(batch, dtype=tf.float32)).numpy()


def _onnxruntime_engine(model: bytes, threads: int) -> Engine:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name

    def infer(batch: np.ndarray) -> np.ndarray:
        feed = {input_name: np.ascontiguousarray(batch, dtype=np.float32)}
        return session.run([output_name], feed)[0]

    return infer


def _openvino_engine(model: bytes, threads: int) -> Engine:
    import openvino as ov

    compiled = ov.Core().compile_model(
        ov.convert_model(io.BytesIO(model)),
        "CPU",
        {
            # Without this OpenVINO silently runs bf16 on CPUs that have it
            # (cosine to Keras ~0.93); pinning put both Spark workers on one core.
            "INFERENCE_PRECISION_HINT": "f32",
            "ENABLE_CPU_PINNING": False,
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
        },
    )
    request = compiled.create_infer_request()

    def infer(batch: np.ndarray) -> np.ndarray:
        return request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})[0].copy()

    return infer


def _no_export(weights_path: str, image_size: int) -> bytes:
    return b""


def _synthetic_engine(model: bytes, threads: int) -> Engine:
    """No model: each file's vector drawn from a generator seeded by its bytes' SHA-256."""

    def infer(contents: list[bytes]) -> np.ndarray:
        vectors = np.empty((len(contents), FEATURE_DIM), dtype=np.float32)
        for row, data in enumerate(contents):
            seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
            vectors[row] = np.random.default_rng(seed).standard_normal(FEATURE_DIM, np.float32)
        return vectors

    return infer


@dataclass(frozen=True)
class EngineSpec:
    """How the driver prepares an engine's graph and a worker runs it (the engines and the
    modules they need are named in fruits_contract.engines)."""

    name: str
    # Driver side: (weights path, image size) -> the bytes broadcast to the workers.
    export: Callable[[str, int], bytes]
    # File suffix of the exported graph in the export cache.
    artifact: str
    # Worker side: (graph bytes, threads) -> a callable on batches.
    build: Callable[[bytes, int], Engine]
    # The engine takes each file's bytes, not decoded pixels.
    reads_bytes: bool = False


ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec("onnxruntime", export_onnx, f"op{ONNX_OPSET}.onnx", _onnxruntime_engine),
        EngineSpec("tensorflow", export_tensorflow_graph, "tf.pb", _tensorflow_engine),
        EngineSpec("openvino", export_onnx, f"op{ONNX_OPSET}.onnx", _openvino_engine),
        EngineSpec("synthetic", _no_export, "none", _synthetic_engine, reads_bytes=True),
    )
}


def build_engine(name: str, model: bytes, threads: int) -> Engine:
    """Worker side: a callable batch (N, S, S, 3) float32 → (N, 1280) float32."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; expected one of {', '.join(ENGINES)}")
    return ENGINES[name].build(model, threads)
