"""The job: list → select → features (pandas UDF) → PCA → outputs.

Every check that can fail on bad input runs before the model is built, and
the `_SUCCESS` marker is written last, so a run prefix either holds a whole
run or visibly does not.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata

import pandas as pd
from pyspark import SparkConf, StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_job import outputs, storage
from fruits_job.cli import PROG, JobInputError, parse_args
from fruits_job.engines import (
    FEATURE_DIM,
    EngineUnavailableError,
    check_engine_installed,
    prepare_model,
)
from fruits_job.features import InferenceSettings, make_feature_udf
from fruits_job.listing import list_bank, read_images, read_roots
from fruits_job.pca import PcaCheckError, fit_pca
from fruits_job.preprocess import EMPTY_FILE
from fruits_job.selection import ListedFile, Selection, select_images

log = logging.getLogger("fruits_job")

# Arrow batches of 256 rows, inferred in chunks of --batch-size: bigger Arrow
# batches only add memory (measured: 4.6 GB per worker for 256-image calls).
SPARK_DEFAULTS = {
    "spark.sql.execution.arrow.maxRecordsPerBatch": "256",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


class StageTimer:
    """Durations and throughput of each stage, logged and kept for model_info."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}

    @contextmanager
    def stage(self, name: str, images: int | None = None):
        log.info("stage %s: started%s", name, f" ({images} images)" if images else "")
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        record = {"seconds": round(seconds, 3)}
        if images:
            record["images_per_second"] = round(images / seconds, 2)
        self.stages[name] = record
        rate = f", {record['images_per_second']} images/s" if images else ""
        log.info("stage %s: done in %.1f s%s", name, seconds, rate)


class ProgressReporter(threading.Thread):
    """Logs task progress of running Spark stages, so a long step log shows life."""

    def __init__(self, spark: SparkSession, every_seconds: float = 30.0) -> None:
        super().__init__(daemon=True)
        self._tracker = spark.sparkContext.statusTracker()
        self._every = every_seconds
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._every):
            for stage_id in self._tracker.getActiveStageIds():
                info = self._tracker.getStageInfo(stage_id)
                if info:
                    log.info(
                        "progress: spark stage %d, %d/%d tasks done",
                        stage_id,
                        info.numCompletedTasks,
                        info.numTasks,
                    )

    def stop(self) -> None:
        self._stop_event.set()


def build_session() -> SparkSession:
    builder = SparkSession.builder.appName(PROG)
    submitted = SparkConf()  # what spark-submit / spark-defaults set wins
    for key, value in SPARK_DEFAULTS.items():
        if not submitted.contains(key):
            builder = builder.config(key, value)
    return builder.getOrCreate()


def read_weights(spark: SparkSession, uri: str) -> bytes:
    row = spark.read.format("binaryFile").load(uri).select("content").first()
    return bytes(row.content)


def _versions(spark: SparkSession) -> dict[str, str]:
    def version(*names: str) -> str:
        for name in names:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return "not installed"

    # Which BLAS/LAPACK MLlib's netlib runs on the driver (native, or its pure-Java fallback).
    netlib = spark.sparkContext._jvm.dev.ludovic.netlib
    implementations = {
        "netlib_blas": netlib.blas.BLAS.getInstance(),
        "netlib_lapack": netlib.lapack.LAPACK.getInstance(),
    }
    return {
        "python": platform.python_version(),
        "spark": spark.version,
        **{name: impl.getClass().getSimpleName() for name, impl in implementations.items()},
        "tensorflow": version("tensorflow-cpu", "tensorflow"),
        "onnxruntime": version("onnxruntime"),
        "openvino": version("openvino"),
        "tf2onnx": version("tf2onnx"),
        "pillow": version("pillow"),
        "numpy": version("numpy"),
        "pandas": version("pandas"),
        "pyarrow": version("pyarrow"),
    }


class BankPaths:
    """Where a listed file lives in the bank: the job may read a copy (``--input-as``)."""

    def __init__(self, input_root: str, input_as: str | None) -> None:
        self.root = input_root.rstrip("/")
        self.bank = (input_as or input_root).rstrip("/")

    def __call__(self, path: str) -> str:
        if path == self.root or path.startswith(self.root + "/"):
            return self.bank + path[len(self.root) :]
        return path


def extract_features(
    spark: SparkSession,
    selection: Selection,
    listed: list[ListedFile],
    training: str,
    bank_path: BankPaths,
    settings: InferenceSettings,
    model: bytes,
    partitions: int,
) -> DataFrame:
    """path (in the bank), label, bytes, features, error for every selected image, cached."""
    readable = [image for image in selection.images if image.size > 0]
    # Through Arrow (pandas): ~10x faster than a list of tuples for 67,692 rows.
    wanted = spark.createDataFrame(
        pd.DataFrame(
            {
                "path": [i.path for i in readable],
                "bank_path": [bank_path(i.path) for i in readable],
                "label": [i.label for i in readable],
            },
            dtype="string",
        ),
        "path string, bank_path string, label string",
    )
    content = (
        read_images(spark, read_roots(selection.images, listed, training))
        .join(F.broadcast(wanted), "path")
        # Merge the many small file partitions without a shuffle: one model
        # per worker, and no idle cores.
        .coalesce(partitions)
    )
    udf = make_feature_udf(settings, spark.sparkContext.broadcast(model))
    result = content.select(
        F.col("bank_path").alias("path"), "label", "bytes", udf("content").alias("r")
    ).select("path", "label", "bytes", "r.features", "r.error")
    # Spark's file scans never return zero-length files: report them from the listing.
    empty = [
        (bank_path(i.path), i.label, 0, None, EMPTY_FILE) for i in selection.images if i.size == 0
    ]
    if empty:
        result = result.unionByName(spark.createDataFrame(empty, result.schema))
    return result.persist(StorageLevel.MEMORY_AND_DISK)


def run(spark: SparkSession, args) -> dict:
    started_at = datetime.now(UTC)
    timer = StageTimer()
    output = storage.qualify(spark, args.output).rstrip("/")
    input_root = storage.qualify(spark, args.input).rstrip("/")
    weights_uri = storage.qualify(spark, args.weights)
    training = f"{input_root}/Training"
    # What the outputs and messages name: the bank and the run's prefix, not a copy.
    bank_path = BankPaths(input_root, args.input_as)
    published = (args.output_as or output).rstrip("/")

    if storage.is_non_empty_dir(spark, output):
        raise JobInputError(f"output {output} already holds files; each run needs a new prefix")
    if not storage.exists(spark, weights_uri):
        raise JobInputError(f"weights file not found: {weights_uri}")
    if not storage.exists(spark, training):
        raise JobInputError(f"no Training/ folder under {input_root}")
    try:
        check_engine_installed(args.engine)
    except EngineUnavailableError as exc:
        raise JobInputError(str(exc)) from None

    with timer.stage("list"):
        listed = list_bank(spark, training, args.mode)
        selection = select_images(listed, args.mode, args.limit, training)
    skipped = [(bank_path(f.path), f.label or "", f.size, f.reason) for f in selection.skipped]
    files_listed = selection.files_listed
    if args.also_skipped:
        seen = {bank_path(f.path) for f in listed}
        extra = [
            row
            for row in outputs.read_csv_rows(storage.read_text(spark, args.also_skipped))
            if row[0] not in seen
        ]
        skipped = sorted(skipped + extra)
        files_listed += len(extra)
    for path, _, _, reason in skipped:
        log.warning("skipping %s: %s", path, reason)
    n_images = len(selection.images)
    if n_images == 0:
        raise JobInputError(f"no images for mode {args.mode!r} under {bank_path(training)}")
    if n_images < 2:
        raise JobInputError(f"a PCA needs at least 2 images; this run would process {n_images}")
    if args.pca_components > n_images:
        raise JobInputError(
            f"--pca-components {args.pca_components} is more than the {n_images} images "
            "this run would process"
        )
    log.info(
        "run %s: mode %s, %d images of %d classes selected from %d files under %s",
        args.run_id,
        args.mode,
        n_images,
        len({image.label for image in selection.images}),
        selection.files_listed,
        training,
    )

    weights = read_weights(spark, weights_uri)
    sha256 = hashlib.sha256(weights).hexdigest()
    log.info("weights %s: %d bytes, sha256 %s", weights_uri, len(weights), sha256)
    settings = InferenceSettings(
        engine=args.engine,
        image_size=args.image_size,
        batch_size=args.batch_size,
        threads=int(spark.conf.get("spark.task.cpus", "1")),
        weights_sha256=sha256,
    )
    with timer.stage("prepare_model"):
        try:
            model = prepare_model(args.engine, weights, args.image_size)
        except Exception as exc:  # Keras/h5py name the problem; the user needs the file too
            raise JobInputError(
                f"weights {weights_uri} cannot be loaded into MobileNetV2 (no top): "
                f"{type(exc).__name__}: {exc}"
            ) from None
    log.info("engine %s: %d bytes of model broadcast to the workers", args.engine, len(model))
    partitions = args.partitions or spark.sparkContext.defaultParallelism
    log.info(
        "inference: %s, %d partitions, %d thread(s) per task",
        settings,
        partitions,
        settings.threads,
    )

    progress = ProgressReporter(spark)
    progress.start()
    try:
        with timer.stage("features", n_images):
            result = extract_features(
                spark, selection, listed, training, bank_path, settings, model, partitions
            )
            result.count()

        with timer.stage("errors_and_metadata"):
            error_rows = (
                result.filter(F.col("error").isNotNull())
                .select("path", "label", "bytes", "error")
                .orderBy("path")
                .collect()
            )
            for row in error_rows:
                log.warning("cannot use %s: %s", row.path, row.error)
            storage.write_text(
                spark,
                f"{output}/errors/errors.csv",
                outputs.to_csv_text(["path", "label", "bytes", "reason"], error_rows),
            )
            storage.write_text(
                spark,
                f"{output}/errors/skipped.csv",
                outputs.to_csv_text(["path", "label", "bytes", "reason"], skipped),
            )
            status = F.when(F.col("error").isNull(), "ok").otherwise("error").alias("status")
            metadata_df = result.select("path", "label", "bytes", status).coalesce(1)
            outputs.write_table(metadata_df, f"{output}/metadata")

        good = result.filter(F.col("error").isNull()).select("path", "label", "features")
        n_features = n_images - len(error_rows)
        if n_features < max(2, args.pca_components):
            raise JobInputError(
                f"only {n_features} of {n_images} images could be read, too few for "
                f"{args.pca_components} PCA components (see {published}/errors/errors.csv)"
            )

        with timer.stage("write_features", n_features):
            names = [f"f{i:04d}" for i in range(FEATURE_DIM)]
            outputs.write_table(
                good, f"{output}/features", outputs.expand_array(good, "features", names)
            )

        with timer.stage("pca", n_features):
            pca = fit_pca(good, args.pca_components)
            explained = pca.explained
            names = [f"pc{i:03d}" for i in range(1, args.pca_components + 1)]
            outputs.write_table(
                pca.projected, f"{output}/pca", outputs.expand_array(pca.projected, "pca", names)
            )
    finally:
        progress.stop()

    cumulative = [sum(explained[: i + 1]) for i in range(len(explained))]
    finished_at = datetime.now(UTC)
    info = {
        "run_id": args.run_id,
        "mode": args.mode,
        "input": bank_path(input_root),
        "output": published,
        "engine": args.engine,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "partitions": partitions,
        "pca_components": args.pca_components,
        "feature_dim": FEATURE_DIM,
        "counts": {
            "files_listed": files_listed,
            "skipped_files": len(skipped),
            "images_selected": n_images,
            "features": n_features,
            "errors": len(error_rows),
        },
        "explained_variance": explained,
        "cumulative_variance": cumulative,
        "variance_kept": cumulative[-1],
        "weights": {"uri": args.weights_as or weights_uri, "sha256": sha256},
        "versions": _versions(spark),
        "stages": timer.stages,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_seconds": round((finished_at - started_at).total_seconds(), 3),
    }
    outputs.write_json(spark, f"{output}/model_info/model_info.json", info)
    storage.write_text(spark, f"{output}/model_info/variance.csv", outputs.variance_csv(explained))
    storage.write_text(spark, f"{output}/_SUCCESS", "")
    log.info(
        "run %s done: %d images, %d errors, %.1f%% of variance kept by %d components, "
        "features at %.1f images/s, outputs in %s",
        args.run_id,
        n_images,
        len(error_rows),
        100 * cumulative[-1],
        args.pca_components,
        timer.stages["features"]["images_per_second"],
        published,
    )
    result.unpersist()
    return info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
        run(spark, args)
    except (JobInputError, PcaCheckError) as exc:
        error = str(exc)
    else:
        error = None
    finally:
        spark.stop()
    if error:
        # Last, after Spark's shutdown chatter: the line a step log ends with.
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0
