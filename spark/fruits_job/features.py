"""The feature-extraction pandas UDF: image bytes → 1280-d vector or an error reason.

Runs in the Python workers. The model is built once per worker process (not
per task, not per batch) from weights broadcast by the driver.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from pyspark import Accumulator
from pyspark.broadcast import Broadcast
from pyspark.sql import SparkSession
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

from fruits_contract.engines import BASE_MODULES, ENGINES
from fruits_job.engines import Engine, build_engine
from fruits_job.preprocess import ImageDecodeError, decode_image, to_model_input

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
    decode_seconds: float = 0.0
    inference_seconds: float = 0.0


def extract_batch(
    engine: Engine, contents: pd.Series, settings: InferenceSettings, stats: TaskStats
) -> pd.DataFrame:
    """Features for one Arrow batch, inferred in chunks of `batch_size` images."""
    features: list[np.ndarray | None] = [None] * len(contents)
    errors: list[str | None] = [None] * len(contents)
    size = settings.image_size
    for start in range(0, len(contents), settings.batch_size):
        rows: list[int] = []
        pixels: list[np.ndarray] = []
        started = time.perf_counter()
        for offset, data in enumerate(contents.iloc[start : start + settings.batch_size]):
            try:
                pixels.append(decode_image(data, size))
                rows.append(start + offset)
            except ImageDecodeError as exc:
                errors[start + offset] = str(exc)
        decoded = time.perf_counter()
        if pixels:
            vectors = engine(to_model_input(np.stack(pixels)))
            for row, vector in zip(rows, vectors, strict=True):
                features[row] = vector.astype(np.float32)
        stats.decode_seconds += decoded - started
        stats.inference_seconds += time.perf_counter() - decoded
    stats.images += len(contents)
    return pd.DataFrame({"features": features, "error": errors})


def make_feature_udf(settings: InferenceSettings, model: Broadcast, done: Accumulator):
    """An iterator pandas UDF: content (binary) → struct<features, error>.

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
        for contents in batches:
            yield extract_batch(engine, contents, settings, stats)
            done.add(len(contents))
        total = time.perf_counter() - started
        # print, not logging: Python workers have no logging handler, stderr reaches the
        # executor log (and the console in local mode).
        print(
            f"fruits_job task: {stats.images} images in {total:.1f} s "
            f"({stats.images / total if total else 0:.1f}/s): engine ready in "
            f"{ready - started:.2f} s, decode {stats.decode_seconds:.1f} s, inference "
            f"{stats.inference_seconds:.1f} s, rest (Spark, Arrow) "
            f"{total - (ready - started) - stats.decode_seconds - stats.inference_seconds:.1f} s",
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
