"""model_info/model_info.json: what a run did, counted, and what it ran on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fruits_contract.engines import FEATURE_DIM
from fruits_contract.job_request import JobRequest
from fruits_job.bank import Bank, RunPaths
from fruits_job.feature_stage import FeatureTable
from fruits_job.feature_store import FeatureStore
from fruits_job.inference_model import Model


def store_record(store: FeatureStore | None, written: int | None, recompute: bool) -> Any:
    """The feature store block: its table, the fingerprint, the versions read and written
    (the run's features are the table's rows of its images, at either version)."""
    if store is None:
        return None
    return {
        "uri": store.table.root,
        "table": store.table.uri,
        "fingerprint_id": store.fingerprint.id,
        "fingerprint": store.fingerprint.fields(),
        "version_read": store.version,
        "version_written": written,
        "recompute": recompute,
    }


def describe_run(
    *,
    request: JobRequest,
    paths: RunPaths,
    bank: Bank,
    table: FeatureTable,
    errors: int,
    store: Any,
    explained: list[float],
    model: Model,
    stages: dict[str, dict[str, float]],
    versions: dict[str, str],
    started_at: datetime,
    finished_at: datetime,
) -> dict[str, Any]:
    """The run's model_info (docs/contract.md); ``store`` is ``store_record``'s."""
    images = bank.image_count
    features = images - errors
    cumulative = [sum(explained[: i + 1]) for i in range(len(explained))]
    return {
        "run_id": request.run_id,
        "mode": request.mode,
        "input": paths.in_bank(paths.input_root),
        "output": paths.output,
        "engine": request.engine,
        "image_size": request.image_size,
        "batch_size": request.batch_size,
        "partitions": table.partitions,
        "pca_components": request.pca_components,
        "feature_dim": FEATURE_DIM,
        "counts": {
            "files_listed": bank.files_listed,
            "skipped_files": bank.skipped_count,
            "images_selected": images,
            "features": features,
            "errors": errors,
            "features_computed": features - table.reused,
            "features_reused": table.reused,
        },
        "feature_store": store,
        "features_exported": request.export_features,
        "explained_variance": explained,
        "cumulative_variance": cumulative,
        "variance_kept": cumulative[-1],
        "weights": {"uri": model.weights_uri, "sha256": model.weights_sha256},
        "versions": versions,
        "stages": stages,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_seconds": round((finished_at - started_at).total_seconds(), 3),
        # What the driver's Python process needed: it must not grow with the bank.
        "driver_python_peak_mb": round(peak_rss_mb(), 1),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux counts ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
