"""The Airflow worker's copy of a run's outputs: what is downloaded, how many runs are kept.

S3 keeps every run. The worker's disk is bounded: a ``full`` run's features (most of its
bytes: 1280 numbers per image, twice) stay on S3 by default and are checked there, and only
the last ``FRUITS_RESULTS_KEEP`` downloaded runs of each mode are kept.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from fruits_features import output_layout
from fruits_features.config import PipelineConfig

log = logging.getLogger(__name__)

ALL, SUMMARY = "all", "summary"
# What a summary download leaves on S3 (prefixes below the run's folder).
LEFT_ON_S3 = {ALL: (), SUMMARY: (f"{output_layout.FEATURES}/",)}


def download_scope(config: PipelineConfig, mode: str) -> str:
    """``all`` or ``summary``: ``auto`` means a summary for ``full`` runs, all otherwise."""
    if config.core.download == "auto":
        return SUMMARY if mode == "full" else ALL
    return config.core.download


def prune_results(mode_dir: Path, keep: int, current: Path) -> list[Path]:
    """Remove the oldest downloaded runs of a mode beyond ``keep``; never ``current``.

    Runs are ordered by when they were downloaded (their ``_SOURCE`` marker, written last).
    Folders that are not downloaded runs are left alone.
    """

    def downloaded_at(folder: Path) -> float:
        return (folder / output_layout.SOURCE).stat().st_mtime

    runs = [p for p in mode_dir.iterdir() if p.is_dir() and (p / output_layout.SOURCE).is_file()]
    runs.sort(key=downloaded_at, reverse=True)
    removed = [p for p in runs[keep:] if p.resolve() != current.resolve()]
    for folder in removed:
        shutil.rmtree(folder)
        log.info("Removed the local copy of an older run (S3 keeps it): %s", folder)
    return removed
