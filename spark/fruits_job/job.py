"""The job: extract (list and select the bank) → transform (features, PCA) → load (outputs).

Every check that can fail on bad input runs before the model is built, and the `_SUCCESS`
marker is written last, so a run prefix either holds a whole run or visibly does not.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from fruits_contract.job_request import ERROR_PREFIX, JobRequest, JobRequestError
from fruits_job import writers
from fruits_job.bank import JobInputError, RunPaths, read_bank
from fruits_job.feature_stage import FeatureTable, extract_features
from fruits_job.feature_store import FeatureStore, open_store
from fruits_job.features import start_python_workers
from fruits_job.inference_model import check_engine, load_model
from fruits_job.model_info import describe_run, store_record
from fruits_job.pca import PcaCheckError, fit_pca
from fruits_job.progress import StageTimer, reporting_progress
from fruits_job.session import build_session, versions

log = logging.getLogger("fruits_job")


def run(spark: SparkSession, request: JobRequest) -> dict:
    started_at = datetime.now(UTC)
    timer = StageTimer()
    # Extract: the run's locations and the bank's files, checked before any model exists.
    paths = RunPaths.checked(spark, request)
    check_engine(request.engine)
    start_python_workers(spark, request.engine)
    bank = read_bank(spark, paths, request, timer)
    images = bank.image_count
    model = load_model(spark, paths, request, timer)
    store = open_store(spark, request, model.weights_sha256)

    # Transform: features (stored as soon as computed), then the PCA; load as they come.
    with reporting_progress(spark) as progress:
        with timer.stage("features", images):
            lookup = None if request.recompute else store
            table = extract_features(bank, model, lookup, progress, request.partitions)
        log.info(
            "features: %d images computed (%d tasks), %d reused from the feature store",
            table.computed,
            table.partitions,
            table.reused,
        )
        written = store_features(store, table, request, timer)
        with timer.stage("errors_and_metadata"):
            errors = writers.write_errors_and_metadata(
                spark, paths.output, table.rows, images, bank.skipped
            )
        features = images - errors
        if features < max(2, request.pca_components):
            raise JobInputError(
                f"only {features} of {images} images could be read, too few for "
                f"{request.pca_components} PCA components (see {paths.output}/errors/)"
            )
        if request.export_features:
            with timer.stage("write_features", features):
                writers.write_features(paths.output, table.features, features)
        with timer.stage("pca", features):
            explained = fit_and_write_pca(
                spark, paths.output, table, request.pca_components, features
            )

    info = describe_run(
        request=request,
        paths=paths,
        bank=bank,
        table=table,
        errors=errors,
        store=store_record(store, written, request.recompute),
        explained=explained,
        model=model,
        stages=timer.stages,
        versions=versions(spark),
        started_at=started_at,
        finished_at=datetime.now(UTC),
    )
    writers.write_model_info(spark, paths.output, info)
    writers.write_success(spark, paths.output)
    log_done(info)
    table.release()
    bank.release()
    return info


def fit_and_write_pca(
    spark: SparkSession, output: str, table: FeatureTable, k: int, features: int
) -> list[float]:
    """The PCA of the ``features`` images with features: pca/, and the summary the report
    reads."""
    pca = fit_pca(table.features, k)
    writers.write_pca(output, pca.projected, k, features)
    writers.write_summary(spark, output, table.rows, pca.projected)
    pca.projected.unpersist()
    return pca.explained


def store_features(
    store: FeatureStore | None, table: FeatureTable, request: JobRequest, timer: StageTimer
) -> int | None:
    """Merge the features this run computed into the store at once (a later failure keeps
    them); errors are never stored. The table version written, if any."""
    if store is None or not table.computed:
        return None
    with timer.stage("store_write", table.computed):
        written = store.merge(table.fresh, request.run_id, refresh=request.recompute)
    log.info("feature store: version %s written (read version %s)", written, store.version)
    return written


def log_done(info: dict) -> None:
    counts = info["counts"]
    log.info(
        "run %s done: %d images, %d errors, %.1f%% of variance kept by %d components, "
        "features at %.1f images/s, outputs in %s",
        info["run_id"],
        counts["images_selected"],
        counts["errors"],
        100 * info["variance_kept"],
        info["pca_components"],
        info["stages"]["features"]["images_per_second"],
        info["output"],
    )


def parse(argv: list[str]) -> JobRequest:
    """The request of these arguments, its run id a UTC time when none is given."""
    request = JobRequest.from_argv(argv)
    if request.run_id is None:
        request = replace(request, run_id=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    return request


def main(argv: list[str] | None = None) -> int:
    try:
        request = parse(sys.argv[1:] if argv is None else argv)
    except JobRequestError as exc:
        # One line, no usage dump: this lands in an EMR step's stderr and in an Airflow
        # task log, where the last line is what people read.
        print(f"{ERROR_PREFIX} {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,  # a library may have configured the root logger on stdout already
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    spark = build_session()
    spark.sparkContext.setLogLevel("WARN")
    try:
        run(spark, request)
    except (JobInputError, PcaCheckError) as exc:
        error = str(exc)
    else:
        error = None
    finally:
        spark.stop()
    if error:
        # Last, after Spark's shutdown chatter: the line a step log ends with.
        print(f"{ERROR_PREFIX} {error}", file=sys.stderr)
        return 2
    return 0
