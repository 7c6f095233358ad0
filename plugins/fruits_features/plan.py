"""The run plan: everything a run will do, computed once by ``check_inputs`` and passed by XCom.

Every key is a JSON value, and every top-level key becomes its own XCom (the task uses
``multiple_outputs``), so tasks and operators take exactly the part they need, e.g. EMR's
``plan["emr_cluster"]``. The compute backend adds its own section (``plan_section``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fruits_features.compute import compute_backend
from fruits_features.config import PipelineConfig
from fruits_features.job_invocation import JobInvocation, JobRequest
from fruits_features.params import RunParams
from fruits_features.results import download_scope
from fruits_features.s3_layout import (
    ARTIFACT_NAMES,
    ENTRY_POINT_NAME,
    JOB_ZIP_NAME,
    SKIPPED_LIST_NAME,
    WEIGHTS_NAME,
    RunLayout,
    run_key,
    run_layout,
)


@dataclass(frozen=True)
class RunSpec:
    """One run as the compute backends see it: its id, parameters and S3 layout."""

    run_id: str
    params: RunParams
    layout: RunLayout
    planned_images: int

    def invocation(self, feature_store: str | None = None) -> JobInvocation:
        """The job reading and writing the run's S3 locations, from its uploaded artifacts;
        its feature store is the bucket's unless the backend keeps one elsewhere."""
        layout = self.layout
        request = JobRequest(
            input_uri=layout.input_uri,
            output_uri=layout.output_uri,
            weights_uri=layout.artifact_uri(WEIGHTS_NAME),
            mode=self.params.mode,
            pca_components=self.params.pca_components,
            run_id=self.run_id,
            engine=self.params.engine,
            limit=self.params.limit,
            also_skipped=layout.artifact_uri(SKIPPED_LIST_NAME),
            feature_store=feature_store or layout.feature_store_uri,
            recompute=not self.params.reuse_features,
        )
        return JobInvocation(
            entry_point=layout.artifact_uri(ENTRY_POINT_NAME),
            job_zip=layout.artifact_uri(JOB_ZIP_NAME),
            request=request,
        )


def run_spec(
    config: PipelineConfig, run_params: RunParams, run_id: str, planned_images: int
) -> RunSpec:
    layout = run_layout(config, run_params.mode, run_key(run_id))
    return RunSpec(run_id, run_params, layout, planned_images)


def build_plan(
    config: PipelineConfig,
    run_params: RunParams,
    run_id: str,
    planned_images: int,
    skipped: list[tuple[str, str, int, str]] | None = None,
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Plan of one run (pure). ``planned_images``: how many images the job should select;
    ``skipped``: (S3 URI, label, bytes, reason) of the files it will not process;
    ``identity``: what the run's outputs depend on (``run_identity``)."""
    run = run_spec(config, run_params, run_id, planned_images)
    layout = run.layout
    plan: dict[str, Any] = {
        "config": config.as_dict(),
        "compute": config.compute,
        "run_id": run_id,
        "run_key": layout.run_key,
        "mode": run_params.mode,
        "pca_components": run_params.pca_components,
        "limit": run_params.limit,
        "engine": run_params.engine,
        "reuse_features": run_params.reuse_features,
        "force": run_params.force,
        "identity": identity,
        "last_success_key": layout.last_success_key,
        "download": download_scope(config, run_params.mode),
        "planned_images": planned_images,
        "skipped_files": [list(row) for row in skipped or []],
        "skipped_list": layout.artifact_uri(SKIPPED_LIST_NAME),
        "bucket": layout.bucket,
        "input_uri": layout.input_uri,
        "output_prefix": layout.output_prefix,
        "output_uri": layout.output_uri,
        "pca_uri": layout.pca_uri,
        "artifacts": {name: layout.artifact_uri(name) for name in ARTIFACT_NAMES},
        "results_dir": str(config.results_path / run_params.mode / layout.run_key),
        # How tasks and operators reach AWS (S3 on every backend).
        "aws_conn_id": config.storage.aws_conn_id,
        "region": config.storage.region,
    }
    section = compute_backend(config.compute).plan_section(config, run)
    clash = sorted(set(section) & set(plan))
    if clash:
        raise ValueError(f"compute backend {config.compute!r} overrides plan keys {clash}")
    return {**plan, **section}
