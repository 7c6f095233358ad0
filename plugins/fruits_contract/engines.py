"""The inference engines a run can use: their names, what the trigger form says of each, and
the Python modules each side of the job imports (the EMR bootstrap installs them).

How each engine exports and runs the model is the job's (``fruits_job/engines.py``), which
implements exactly the engines named here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Length of the MobileNetV2 feature vector (global average pooling of its last block).
FEATURE_DIM = 1280
DEFAULT_ENGINE = "onnxruntime"
# What the driver and the Python workers import whatever the engine (decode, Arrow, PCA,
# listing and reading the bank on S3).
BASE_MODULES = ("numpy", "pandas", "pyarrow", "PIL", "boto3")


@dataclass(frozen=True)
class Engine:
    name: str
    # One line for the trigger form's drop-down.
    label: str
    # Python modules the driver needs to export the model, and the workers to run it.
    driver_modules: tuple[str, ...]
    worker_modules: tuple[str, ...]
    # Offered in the trigger form; the others are for tests and benchmarks.
    offered: bool = True


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        Engine(
            "onnxruntime",
            "onnxruntime: fastest, converted from the Keras model (default)",
            ("tensorflow", "tf2onnx"),
            ("onnxruntime",),
        ),
        Engine(
            "tensorflow",
            "tensorflow: the Keras reference",
            ("tensorflow",),
            ("tensorflow",),
        ),
        Engine(
            "openvino",
            "openvino: converted from the Keras model",
            ("tensorflow", "tf2onnx"),
            ("openvino",),
        ),
        # No model: a vector drawn from each file's bytes (the same bytes, the same vector),
        # so that the pipeline's plumbing is tested and measured at any scale.
        Engine("synthetic", "synthetic: no model, vectors from each file's bytes", (), (), False),
    )
}
OFFERED = [name for name, engine in ENGINES.items() if engine.offered]
