"""The feature-extraction pandas UDF: an image's path → 1280-d vector or an error reason.

Runs in the Python workers, which read each image where it lives (a local file, or S3
through pyarrow), a few at a time: no file index of the bank is ever built on the driver.
The model is built once per worker process (not per task, not per batch) from the graph
broadcast by the driver.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from pyspark import Accumulator
from pyspark.broadcast import Broadcast
from pyspark.sql import SparkSession
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

from fruits_contract.engines import BASE_MODULES, ENGINES
from fruits_job.engines import ENGINES as ENGINE_SPECS
from fruits_job.engines import Engine, build_engine
from fruits_job.preprocess import EMPTY_FILE, ImageDecodeError, decode_image, to_model_input

# Reads in flight per worker: S3 GETs of small files are latency-bound.
READ_THREADS = 16

log = logging.getLogger(__name__)

RESULT_TYPE = StructType(
    [
        StructField("features", ArrayType(FloatType()), nullable=True),
        StructField("error", StringType(), nullable=True),
    ]
)


@dataclass(frozen=True)
class InferenceSettings:
    engine: str
    image_size: int
    batch_size: int
    threads: int
    weights_sha256: str


# One engine per worker process and settings: Spark reuses Python workers
# across tasks, so with many partitions the model is still built only once.
_ENGINES: dict[InferenceSettings, Engine] = {}


def get_engine(settings: InferenceSettings, model: Broadcast) -> Engine:
    engine = _ENGINES.get(settings)
    if engine is None:
        engine = build_engine(settings.engine, model.value, settings.threads)
        _ENGINES[settings] = engine
    return engine


@dataclass
class TaskStats:
    """Where a task's time went, logged when it ends (executor log)."""

    images: int = 0
    read_seconds: float = 0.0
    decode_seconds: float = 0.0
    inference_seconds: float = 0.0

    @property
    def accounted(self) -> float:
        return self.read_seconds + self.decode_seconds + self.inference_seconds


@cache
def _s3(bucket: str) -> object:
    """pyarrow's S3 file system for a bucket, as the AWS SDK finds its credentials (the
    instance profile on EMR); a local S3 through AWS_ENDPOINT_URL_S3, as boto3 takes it."""
    from pyarrow import fs

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint)
        return fs.S3FileSystem(
            region=os.environ.get("AWS_REGION", "us-east-1"),
            endpoint_override=parsed.netloc,
            scheme=parsed.scheme or "https",
        )
    return fs.S3FileSystem(region=os.environ.get("AWS_REGION") or fs.resolve_s3_region(bucket))


def read_file(path: str) -> bytes:
    """The bytes of a file named as Spark lists it: ``s3://`` or ``s3a://`` (S3), ``file:``
    or a plain local path."""
    parsed = urlparse(path)
    if parsed.scheme in ("s3", "s3a", "s3n"):
        with _s3(parsed.netloc).open_input_stream(
            f"{parsed.netloc}/{path.split('/', 3)[3]}"
        ) as stream:
            return stream.read()
    local = path[len("file:") :] if path.startswith("file:") else path
    with open(local, "rb") as handle:
        return handle.read()


def read_files(paths: Sequence[str]) -> list[bytes | OSError]:
    """Each file's bytes, or the error that kept it from being read, in order."""

    def read(path: str) -> bytes | OSError:
        try:
            return read_file(path)
        except OSError as error:
            return error

    with ThreadPoolExecutor(READ_THREADS) as pool:
        return list(pool.map(read, paths))


def extract_batch(
    engine: Engine, paths: pd.Series, settings: InferenceSettings, stats: TaskStats
) -> pd.DataFrame:
    """Features for one Arrow batch of paths, inferred in chunks of `batch_size` images."""
    features: list[np.ndarray | None] = [None] * len(paths)
    errors: list[str | None] = [None] * len(paths)
    started = time.perf_counter()
    contents = read_files(list(paths))
    stats.read_seconds += time.perf_counter() - started
    reads_bytes = ENGINE_SPECS[settings.engine].reads_bytes
    for start in range(0, len(contents), settings.batch_size):
        rows: list[int] = []
        inputs: list[np.ndarray | bytes] = []
        started = time.perf_counter()
        for offset, data in enumerate(contents[start : start + settings.batch_size]):
            try:
                if isinstance(data, OSError):
                    raise ImageDecodeError(f"cannot read the file: {data}")
                if not data:
                    raise ImageDecodeError(EMPTY_FILE)
                inputs.append(data if reads_bytes else decode_image(data, settings.image_size))
                rows.append(start + offset)
            except ImageDecodeError as exc:
                errors[start + offset] = str(exc)
        decoded = time.perf_counter()
        if inputs:
            batch = inputs if reads_bytes else to_model_input(np.stack(inputs))
            for row, vector in zip(rows, engine(batch), strict=True):
                features[row] = vector.astype(np.float32)
        stats.decode_seconds += decoded - started
        stats.inference_seconds += time.perf_counter() - decoded
    stats.images += len(paths)
    return pd.DataFrame({"features": features, "error": errors})


def make_feature_udf(settings: InferenceSettings, model: Broadcast, done: Accumulator):
    """An iterator pandas UDF: path (string) → struct<features, error>.

    `model` is the engine's artifact prepared on the driver (engines.prepare_model); `done`
    counts the images processed, for the driver's progress log (it sees a task's count when
    the task ends).
    """

    @pandas_udf(RESULT_TYPE)
    def extract_features(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        started = time.perf_counter()
        engine = get_engine(settings, model)
        ready = time.perf_counter()
        stats = TaskStats()
        for paths in batches:
            yield extract_batch(engine, paths, settings, stats)
            done.add(len(paths))
        total = time.perf_counter() - started
        # print, not logging: Python workers have no logging handler, stderr reaches the
        # executor log (and the console in local mode).
        print(
            f"fruits_job task: {stats.images} images in {total:.1f} s "
            f"({stats.images / total if total else 0:.1f}/s): engine ready in "
            f"{ready - started:.2f} s, read {stats.read_seconds:.1f} s, decode "
            f"{stats.decode_seconds:.1f} s, inference {stats.inference_seconds:.1f} s, rest "
            f"(Spark, Arrow) {total - (ready - started) - stats.accounted:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    return extract_features


def _import_modules(batches: Iterator[pd.DataFrame], modules: tuple[str, ...]):
    for module in modules:
        importlib.import_module(module)
    yield from batches


def start_python_workers(spark: SparkSession, engine: str) -> None:
    """Start each core's Python worker, the engine's library imported, in the background.

    The first Python task of a run waits for its worker (Spark's Python daemon, the fork,
    pandas and pyarrow: 2.4 s here) and then for the imports: a quarter of a warm run's
    feature stage, where only the new images are computed. Started while the driver lists
    the bank (mostly driver-side work), the workers are idle and ready when the features
    need them: Spark hands an idle Python worker to the next Python task of the same kind
    (``spark.python.worker.reuse``, on by default), and this job is an Arrow one like the
    feature UDF. Only a head start: nothing waits for it, and if it fails the feature stage
    starts its workers itself.
    """
    slots = spark.sparkContext.defaultParallelism
    modules = (*BASE_MODULES, *ENGINES[engine].worker_modules, __name__)
    job = spark.range(slots, numPartitions=slots).mapInPandas(
        partial(_import_modules, modules=modules), "id long"
    )

    def run() -> None:
        try:
            job.collect()
        except Exception as error:  # the run itself reports what matters
            log.debug("starting the Python workers ahead: %s", error)

    threading.Thread(target=run, name="start-python-workers", daemon=True).start()
