"""The inference engines a run can use, as the trigger form shows them.

The Spark job's registry (spark/fruits_job/engines.py) says how each engine runs; a test
holds the two lists equal.
"""

from __future__ import annotations

ENGINES: dict[str, str] = {
    "onnxruntime": "onnxruntime: fastest, converted from the Keras model (default)",
    "tensorflow": "tensorflow: the Keras reference",
    "openvino": "openvino: converted from the Keras model",
}
DEFAULT_ENGINE = "onnxruntime"
FEATURE_DIM = 1280
