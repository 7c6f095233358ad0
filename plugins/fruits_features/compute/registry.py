"""The compute backends by name: the ``FRUITS_COMPUTE`` setting picks one."""

from __future__ import annotations

from fruits_features.compute import emr, local
from fruits_features.compute.base import ComputeBackend

BACKENDS: dict[str, ComputeBackend] = {"emr": emr.BACKEND, "local": local.BACKEND}


def compute_backend(name: str) -> ComputeBackend:
    return BACKENDS[name]
