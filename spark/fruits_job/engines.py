"""Inference engines: MobileNetV2 (ImageNet weights, no top, average pooling) → 1280-d.

An engine is built once per Python worker from the weights file and then
called on batches of preprocessed images.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

# TensorFlow's C++ banner lines would otherwise fill every executor log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FEATURE_DIM = 1280
ENGINES = ("tensorflow",)

Engine = Callable[[np.ndarray], np.ndarray]


class EngineUnavailableError(RuntimeError):
    """The engine's library is not installed where the job runs."""


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


def _tensorflow_engine(weights_path: str, image_size: int, threads: int) -> Engine:
    import tensorflow as tf

    # Must happen before TensorFlow runs its first op in this process; Spark's
    # OMP_NUM_THREADS=1 is ignored by TF, so without this every worker takes
    # every core and they fight.
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this worker: the first setting stands
    model = build_keras_model(weights_path, image_size)

    # A traced graph with a free batch dimension: no retracing for the last,
    # smaller batch, and ~25% faster than model.predict.
    @tf.function(
        input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32)],
        reduce_retracing=True,
    )
    def infer(batch):
        return model(batch, training=False)

    return lambda batch: infer(tf.constant(batch)).numpy()


_BUILDERS: dict[str, Callable[[str, int, int], Engine]] = {
    "tensorflow": _tensorflow_engine,
}


def check_engine_installed(name: str) -> None:
    """Fail early, on the driver, if the engine cannot be imported where we run."""
    import importlib.util

    module = {"tensorflow": "tensorflow"}[name]
    if importlib.util.find_spec(module) is None:
        raise EngineUnavailableError(
            f"engine {name!r} needs the Python package {module!r}, which is not installed"
        )


def build_engine(name: str, weights_path: str, image_size: int, threads: int) -> Engine:
    if name not in _BUILDERS:
        raise ValueError(f"unknown engine {name!r}; expected one of {', '.join(ENGINES)}")
    return _BUILDERS[name](weights_path, image_size, threads)
