"""The run plan: everything a run will do, computed once by ``check_inputs`` and passed by XCom.

Every key is a JSON value, and every top-level key becomes its own XCom (the task uses
``multiple_outputs``), so operators take exactly the part they need, e.g. ``plan["cluster_spec"]``.
"""

from __future__ import annotations

from typing import Any

from fruits_features.config import PipelineConfig
from fruits_features.emr_spec import cluster_spec, spark_sizing, spark_step
from fruits_features.params import RunParams
from fruits_features.s3_layout import ARTIFACT_NAMES, run_key, run_layout


def build_plan(
    config: PipelineConfig, run_params: RunParams, run_id: str, planned_images: int
) -> dict[str, Any]:
    """Plan of one run (pure). ``planned_images``: how many images the job should select."""
    key = run_key(run_id)
    layout = run_layout(config, run_params.mode, key)
    plan: dict[str, Any] = {
        "config": config.as_dict(),
        "run_id": run_id,
        "run_key": key,
        "mode": run_params.mode,
        "pca_components": run_params.pca_components,
        "limit": run_params.limit,
        "engine": run_params.engine,
        "planned_images": planned_images,
        "bucket": layout.bucket,
        "input_uri": layout.input_uri,
        "output_prefix": layout.output_prefix,
        "output_uri": layout.output_uri,
        "pca_uri": layout.pca_uri,
        "artifacts": {name: layout.artifact_uri(name) for name in ARTIFACT_NAMES},
        "results_dir": str(config.results_path / run_params.mode / key),
        # Read by the EMR operators' templated fields.
        "aws_conn_id": config.aws_conn_id,
        "region": config.region,
        "cluster_spec": cluster_spec(config, layout, run_id, run_params.mode),
        "steps": [
            spark_step(
                layout,
                run_params,
                run_id,
                spark_sizing(config.core_instance_type, config.core_instance_count),
            )
        ],
        "watch": {
            "poll_seconds": config.step_poll_seconds,
            "timeout_seconds": config.step_timeout_seconds,
            "deferrable": config.sensor_deferrable,
        },
    }
    return plan
