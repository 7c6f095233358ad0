"""The trigger form: the DAG's params (Airflow ``Param``s), defaults from the deployment's
settings; run_params validates what a run gets."""

from __future__ import annotations

from airflow.sdk import Param

from fruits_contract.engines import ENGINES, FEATURE_DIM, OFFERED
from fruits_contract.modes import EXPORT_CHOICES, MODES
from fruits_features.config import PipelineConfig


def dag_params(config: PipelineConfig) -> dict[str, Param]:
    """Params of the DAG; defaults are what a scheduled run processes."""
    return {
        "mode": Param(
            config.runs.scheduled_mode,
            type="string",
            enum=list(MODES),
            values_display={mode.name: mode.label for mode in MODES.values()},
            title="Mode",
            description="Which images of <input>/Training/ to process. "
            + "; ".join(mode.label for mode in MODES.values())
            + ".",
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
            enum=OFFERED,
            values_display={name: ENGINES[name].label for name in OFFERED},
            title="Inference engine",
            description=(
                "How MobileNetV2 runs in the Spark workers. Every engine uses the same weights "
                "and matches TensorFlow (cosine >= 0.9999 per image, tested)."
            ),
        ),
        "export_features": Param(
            config.runs.export_features,
            type="string",
            enum=list(EXPORT_CHOICES),
            values_display={
                "auto": "by mode: mini and apples export, full does not",
                "always": "always export",
                "never": "never export",
            },
            title="Export the 1280-d features",
            description=(
                "Also write every image's 1280 numbers to features/ (Parquet and CSV, ~15 KB "
                "per image). Every vector is in the feature store either way."
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
