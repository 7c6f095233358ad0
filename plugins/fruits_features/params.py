"""Run parameters: the trigger form (Airflow ``Param``s) and their validation inside a task."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk import Param

from fruits_features.config import PipelineConfig
from fruits_features.engines import DEFAULT_ENGINE, ENGINES, FEATURE_DIM
from fruits_features.modes import MODES

# The keys a run conf may hold: the params below.
PARAM_NAMES = ("mode", "pca_components", "limit", "engine", "reuse_features", "force")


class RunParamsError(ValueError):
    """The run's parameters are invalid."""


@dataclass(frozen=True)
class RunParams:
    mode: str
    pca_components: int
    limit: int | None = None
    engine: str = DEFAULT_ENGINE
    reuse_features: bool = True
    force: bool = False

    @property
    def may_skip(self) -> bool:
        """Whether the run may be skipped when nothing changed since the last success."""
        return self.reuse_features and not self.force


def dag_params(config: PipelineConfig) -> dict[str, Param]:
    """Params of the DAG; defaults are what a scheduled run processes."""
    return {
        "mode": Param(
            config.runs.scheduled_mode,
            type="string",
            enum=list(MODES),
            values_display={mode.name: mode.label for mode in MODES.values()},
            title="Mode",
            description=(
                "Which images of <input>/Training/ to process. mini = 300 Apple images; "
                "apples = every image of the Apple* classes (~6,400 in full Fruits-360); "
                "full = every image (67,692)."
            ),
        ),
        "pca_components": Param(
            config.runs.pca_components,
            type="integer",
            minimum=1,
            maximum=FEATURE_DIM,
            title="PCA components (K)",
            description=(
                f"Number of principal components kept, 1..{FEATURE_DIM}; "
                "at most the number of images processed."
            ),
        ),
        "limit": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Image limit",
            description=(
                "Process at most this many images (a deterministic subset), for quick runs. "
                "Empty = no limit."
            ),
        ),
        "engine": Param(
            config.runs.engine,
            type="string",
            enum=list(ENGINES),
            values_display=ENGINES,
            title="Inference engine",
            description=(
                "How MobileNetV2 runs in the Spark workers. Every engine uses the same weights "
                "and matches TensorFlow (cosine >= 0.9999 per image, tested)."
            ),
        ),
        "reuse_features": Param(
            True,
            type="boolean",
            title="Reuse stored features",
            description=(
                "Take the features of images unchanged since an earlier run (same file, same "
                "size and time, same model) from the feature store. Off: compute every image "
                "again and refresh the store."
            ),
        ),
        "force": Param(
            False,
            type="boolean",
            title="Run even if nothing changed",
            description=(
                "A run whose images, code, weights and parameters are those of the last "
                "successful run of its mode is skipped before any cluster starts. On: run "
                "anyway."
            ),
        ),
    }


def parse_run_params(params: Mapping[str, Any], conf: Mapping[str, Any] | None = None) -> RunParams:
    """Validate the resolved params again (API triggers can skip the form) and reject typos.

    An unknown key in the run conf is an error: ``{"mdoe": "mini"}`` would otherwise start
    an expensive ``full`` run.
    """
    unknown = sorted(set(conf or {}) - set(PARAM_NAMES))
    if unknown:
        raise RunParamsError(f"unknown run conf key(s): {', '.join(unknown)}")
    mode = params.get("mode")
    if mode not in MODES:
        raise RunParamsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    k = params.get("pca_components")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= FEATURE_DIM:
        raise RunParamsError(f"pca_components must be an integer in 1..{FEATURE_DIM}, got {k!r}")
    limit = params.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise RunParamsError(f"limit must be empty or an integer >= 1, got {limit!r}")
    engine = params.get("engine", DEFAULT_ENGINE)
    if engine not in ENGINES:
        raise RunParamsError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    flags = {
        name: params.get(name, default)
        for name, default in (("reuse_features", True), ("force", False))
    }
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise RunParamsError(f"{name} must be true or false, got {value!r}")
    return RunParams(mode=mode, pca_components=k, limit=limit, engine=engine, **flags)
