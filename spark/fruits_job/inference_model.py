"""The model a run broadcasts: MobileNetV2 with the run's weights, prepared for its engine on
the driver (the ``prepare_model`` stage)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession

from fruits_contract.job_request import JobRequest
from fruits_job.bank import JobInputError, RunPaths
from fruits_job.engines import EngineUnavailableError, check_engine_installed, prepare_model
from fruits_job.features import InferenceSettings
from fruits_job.progress import StageTimer

log = logging.getLogger("fruits_job")


@dataclass(frozen=True)
class Model:
    settings: InferenceSettings
    graph: bytes  # the engine's artifact, broadcast to the workers
    weights_uri: str  # where the weights live, as model_info names them

    @property
    def weights_sha256(self) -> str:
        return self.settings.weights_sha256


def check_engine(engine: str) -> None:
    """Refuse an engine whose library is not installed where the job runs."""
    try:
        check_engine_installed(engine)
    except EngineUnavailableError as exc:
        raise JobInputError(str(exc)) from None


def read_weights(spark: SparkSession, uri: str) -> bytes:
    row = spark.read.format("binaryFile").load(uri).select("content").first()
    return bytes(row.content)


def load_model(
    spark: SparkSession, paths: RunPaths, request: JobRequest, timer: StageTimer
) -> Model:
    """Read the weights and prepare the engine's graph from them."""
    weights = read_weights(spark, paths.weights)
    sha256 = hashlib.sha256(weights).hexdigest()
    log.info("weights %s: %d bytes, sha256 %s", paths.weights, len(weights), sha256)
    settings = InferenceSettings(
        engine=request.engine,
        image_size=request.image_size,
        batch_size=request.batch_size,
        threads=int(spark.conf.get("spark.task.cpus", "1")),
        weights_sha256=sha256,
    )
    with timer.stage("prepare_model"):
        try:
            graph = prepare_model(request.engine, weights, request.image_size)
        except Exception as exc:  # Keras/h5py name the problem; the user needs the file too
            raise JobInputError(
                f"weights {paths.weights} cannot be loaded into MobileNetV2 (no top): "
                f"{type(exc).__name__}: {exc}"
            ) from None
    log.info("engine %s: %d bytes of model broadcast to the workers", request.engine, len(graph))
    log.info("inference: %s, %d thread(s) per task", settings, settings.threads)
    return Model(settings, graph, paths.weights)
