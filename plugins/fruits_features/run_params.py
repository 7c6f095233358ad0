"""A run's parameters, validated inside a task: the trigger form's values and the run conf."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fruits_contract.engines import DEFAULT_ENGINE, FEATURE_DIM, OFFERED
from fruits_contract.modes import EXPORT_CHOICES, MODES, Mode

# The keys a run conf may hold: the DAG's params.
PARAM_NAMES = (
    "mode",
    "pca_components",
    "limit",
    "engine",
    "export_features",
    "reuse_features",
    "force",
)


class RunParamsError(ValueError):
    """The run's parameters are invalid."""


@dataclass(frozen=True)
class RunParams:
    mode: str
    pca_components: int
    limit: int | None = None
    engine: str = DEFAULT_ENGINE
    export_features: str = "auto"  # always, never, or auto: the mode decides
    reuse_features: bool = True
    force: bool = False

    @property
    def spec(self) -> Mode:
        """What the mode processes."""
        return MODES[self.mode]

    @property
    def exports(self) -> bool:
        """Whether the run writes its vectors (features/)."""
        return self.spec.exports(self.export_features)

    @property
    def may_skip(self) -> bool:
        """Whether the run may be skipped when nothing changed since the last success."""
        return self.reuse_features and not self.force


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
    if engine not in OFFERED:
        raise RunParamsError(f"engine must be one of {', '.join(OFFERED)}, got {engine!r}")
    export = params.get("export_features", "auto")
    if export not in EXPORT_CHOICES:
        raise RunParamsError(
            f"export_features must be one of {', '.join(EXPORT_CHOICES)}, got {export!r}"
        )
    flags = {
        name: params.get(name, default)
        for name, default in (("reuse_features", True), ("force", False))
    }
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise RunParamsError(f"{name} must be true or false, got {value!r}")
    return RunParams(
        mode=mode, pca_components=k, limit=limit, engine=engine, export_features=export, **flags
    )
