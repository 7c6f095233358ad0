"""Paths shared by every test package."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "fruits-360"
WEIGHTS = REPO / "models" / "mobilenet_v2_1.0_224_no_top.weights.h5"

# Spark's Python workers must run this interpreter (the venv's), not `python3`
# from PATH.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
