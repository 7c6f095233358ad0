"""The job: list → select → features (pandas UDF) → PCA → outputs.

Every check that can fail on bad input runs before the model is built, and
the `_SUCCESS` marker is written last, so a run prefix either holds a whole
run or visibly does not.
"""

from __future__ import annotations

import hashlib
import logging
import math
import platform
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata

import pandas as pd
from pyspark import Accumulator, SparkConf, StorageLevel
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
from fruits_job.feature_store import FeatureStore, Fingerprint, new_segment_id
from fruits_job.features import InferenceSettings, make_feature_udf, start_python_workers
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
    # A photo is ~5 KB: at the default 4 MB "open cost" a file scan packs 32 files per
    # task, and listing 67,692 photos ran ~2,100 tasks. 256 KB packs ~500.
    "spark.sql.files.openCostInBytes": "262144",
    # Listing many folders or files (the bank's classes, a warm run's new photos) runs a
    # Spark job of one task per path by default; a few tasks of many paths each suffice.
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "16",
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


def progress_line(done: int, total: int, seconds: float) -> str:
    """``features: 4000/19136 images (20.9%), 150.2 images/s, about 1 min 41 s left``."""
    rate = done / seconds if seconds > 0 else 0.0
    line = f"features: {done}/{total} images ({100 * done / total:.1f}%)" if total else ""
    if not done:
        return f"{line}, starting"
    left = round((total - done) / rate) if rate else 0
    minutes, secs = divmod(left, 60)
    eta = f"{minutes} min {secs} s" if minutes else f"{secs} s"
    return f"{line}, {rate:.1f} images/s, about {eta} left"


class ProgressReporter(threading.Thread):
    """Logs progress about every 30 s, so a long step log shows life and how long is left.

    During the feature stage: images done of those to compute (an accumulator the UDF adds
    to; the driver sees a task's images when the task ends, hence tasks of at most
    IMAGES_PER_TASK images), the rate and the time left. Otherwise: tasks done per stage.
    """

    def __init__(self, spark: SparkSession, every_seconds: float = 30.0) -> None:
        super().__init__(daemon=True)
        self._tracker = spark.sparkContext.statusTracker()
        self._every = every_seconds
        self._stop_event = threading.Event()
        self._images: tuple[Accumulator, int, float] | None = None

    def track_images(self, done: Accumulator | None, total: int = 0) -> None:
        self._images = (done, total, time.monotonic()) if done is not None else None

    def run(self) -> None:
        while not self._stop_event.wait(self._every):
            if self._images is not None:
                done, total, started = self._images
                log.info("%s", progress_line(done.value, total, time.monotonic() - started))
                continue
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


# At most this many images per feature task: the progress log (fed as tasks end) moves
# every few seconds, and a lost task costs little to redo.
IMAGES_PER_TASK = 1000


def feature_partitions(images: int, parallelism: int, per_task: int = IMAGES_PER_TASK) -> int:
    """Tasks of the feature stage: a multiple of the cores, so the last wave leaves no core
    idle, each of at most ``per_task`` images."""
    return parallelism * max(1, math.ceil(images / (parallelism * per_task)))


@dataclass
class FeatureTable:
    """Every selected image's features or error: path (in the bank), label, bytes,
    modified, features, error, reused; and how many were computed and reused.

    The computed rows are cached (computed once; the outputs, the store and the PCA read
    them). The reused ones are read from the store's Parquet where used (four passes:
    features Parquet and CSV, covariance, projection), not cached: the workers hold no
    copy of a big bank's vectors, and the feature stage does only the feature work.
    """

    rows: DataFrame
    computed: int
    reused: int
    partitions: int
    cached: DataFrame | None = None

    def release(self) -> None:
        if self.cached is not None:
            self.cached.unpersist()


ROWS_SCHEMA = (
    "path string, label string, bytes long, modified long, features array<float>, "
    "error string, reused boolean"
)


def extract_features(
    spark: SparkSession,
    selection: Selection,
    listed: list[ListedFile],
    training: str,
    bank_path: BankPaths,
    settings: InferenceSettings,
    model: bytes,
    partitions: int | None,
    store: FeatureStore | None,
    progress: ProgressReporter,
) -> FeatureTable:
    """Features of the selected images: from the store when it holds them, else computed."""
    readable = [image for image in selection.images if image.size > 0]
    images = pd.DataFrame(
        {
            "local_path": pd.array([i.path for i in readable], dtype="string"),
            "path": pd.array([bank_path(i.path) for i in readable], dtype="string"),
            "label": pd.array([i.label for i in readable], dtype="string"),
            "bytes": pd.array([i.size for i in readable], dtype="int64"),
            "modified": pd.array([i.modified for i in readable], dtype="int64"),
        }
    )
    frames = []
    reused: set[str] = set()
    if store is not None:
        reused, stored = store.lookup(images.drop(columns="local_path"))
        if stored is not None:
            frames.append(
                stored.select(
                    "path",
                    "label",
                    "bytes",
                    "modified",
                    "features",
                    F.lit(None).cast("string").alias("error"),
                    F.lit(True).alias("reused"),
                )
            )
    new = ~images["path"].isin(reused)
    to_compute = [image for image, is_new in zip(readable, new, strict=True) if is_new]
    partitions = partitions or feature_partitions(
        len(to_compute), spark.sparkContext.defaultParallelism
    )
    if store is not None:
        log.info(
            "feature store %s: %d of %d images found, %d to compute",
            store.root,
            len(reused),
            len(readable),
            len(to_compute),
        )
    cached = None
    if to_compute:
        # Through Arrow (pandas): ~10x faster than a list of tuples for 67,692 rows.
        computing = spark.createDataFrame(
            images[new],
            "local_path string, path string, label string, bytes long, modified long",
        )
        content = (
            read_images(spark, read_roots(to_compute, listed, training))
            .withColumnRenamed("path", "local_path")
            .drop("bytes")
            .join(F.broadcast(computing), "local_path")
            # Merge the many small file partitions without a shuffle: one model per worker,
            # and tasks small enough for the progress log.
            .coalesce(partitions)
        )
        done = spark.sparkContext.accumulator(0)
        udf = make_feature_udf(settings, spark.sparkContext.broadcast(model), done)
        progress.track_images(done, len(to_compute))
        cached = (
            content.select("path", "label", "bytes", "modified", udf("content").alias("r"))
            .select(
                "path",
                "label",
                "bytes",
                "modified",
                "r.features",
                "r.error",
                F.lit(False).alias("reused"),
            )
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        cached.count()
        progress.track_images(None)
        frames.append(cached)
    # Spark's file scans never return zero-length files: report them from the listing.
    empty = [
        (bank_path(i.path), i.label, 0, i.modified, None, EMPTY_FILE, False)
        for i in selection.images
        if i.size == 0
    ]
    if empty or not frames:
        frames.append(spark.createDataFrame(empty, ROWS_SCHEMA))
    rows = frames[0]
    for frame in frames[1:]:
        rows = rows.unionByName(frame)
    return FeatureTable(rows, len(to_compute), len(reused), partitions, cached)


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

    start_python_workers(spark, args.engine)
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
    log.info("inference: %s, %d thread(s) per task", settings, settings.threads)
    store = None
    if args.feature_store:
        fingerprint = Fingerprint(sha256, args.engine, args.image_size)
        store = FeatureStore(spark, storage.qualify(spark, args.feature_store), fingerprint)
    segment = new_segment_id()

    progress = ProgressReporter(spark)
    progress.start()
    try:
        with timer.stage("features", n_images):
            table = extract_features(
                spark,
                selection,
                listed,
                training,
                bank_path,
                settings,
                model,
                args.partitions,
                None if store is None or args.recompute else store,
                progress,
            )
        result = table.rows
        log.info(
            "features: %d images computed (%d tasks), %d reused from the feature store",
            table.computed,
            table.partitions,
            table.reused,
        )

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
        n_computed = n_features - table.reused
        # Only features go to the store: an image that failed is tried again next run.
        stored = store is not None and n_computed > 0
        if stored:
            with timer.stage("store_write", n_computed):
                fresh = result.filter(~F.col("reused") & F.col("error").isNull())
                store.write_segment(fresh, segment)
        if n_features < max(2, args.pca_components):
            raise JobInputError(
                f"only {n_features} of {n_images} images could be read, too few for "
                f"{args.pca_components} PCA components (see {published}/errors/errors.csv)"
            )

        with timer.stage("write_features", n_features):
            names = [f"f{i:04d}" for i in range(FEATURE_DIM)]
            outputs.write_table(good, f"{output}/features", ("features", names))

        with timer.stage("pca", n_features):
            pca = fit_pca(good, args.pca_components, FEATURE_DIM)
            explained = pca.explained
            names = [f"pc{i:03d}" for i in range(1, args.pca_components + 1)]
            outputs.write_table(pca.projected, f"{output}/pca", ("pca", names))
            pca.projected.unpersist()
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
        "partitions": table.partitions,
        "pca_components": args.pca_components,
        "feature_dim": FEATURE_DIM,
        "counts": {
            "files_listed": files_listed,
            "skipped_files": len(skipped),
            "images_selected": n_images,
            "features": n_features,
            "errors": len(error_rows),
            "features_computed": n_computed,
            "features_reused": table.reused,
        },
        "feature_store": None
        if store is None
        else {
            "uri": store.root,
            "fingerprint": store.fingerprint.fields(),
            "segment": segment if stored else None,
            "recompute": args.recompute,
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
    if stored:
        # Last but _SUCCESS: a run that failed anywhere before leaves the store as it was.
        store.commit(segment, n_computed, args.run_id)
        log.info("feature store: %d new rows committed as segment %s", n_computed, segment)
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
    table.release()
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
