"""What the job says while it runs: each stage's duration and throughput, and progress lines
about every 30 s, so that a long step log shows life and how long is left."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark import Accumulator
from pyspark.sql import SparkSession

log = logging.getLogger("fruits_job")


class StageTimer:
    """Durations and throughput of each stage, logged and kept for model_info."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}

    @contextmanager
    def stage(self, name: str, images: int | None = None) -> Iterator[None]:
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
    """Logs progress about every 30 s.

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


@contextmanager
def reporting_progress(spark: SparkSession) -> Iterator[ProgressReporter]:
    """A running ProgressReporter, stopped however the block ends."""
    reporter = ProgressReporter(spark)
    reporter.start()
    try:
        yield reporter
    finally:
        reporter.stop()
