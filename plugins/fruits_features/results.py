"""The Airflow worker's copy of a run's outputs: what is downloaded, how many runs are kept.

S3 keeps every run. The worker's disk is bounded: by default only a run's summary (its
record and summary/, a size bounded whatever the bank's) is copied, unless the run itself
is of bounded size (mode ``mini``, or a limit); the data sets are checked where they lie
(output_facts). Only the last ``FRUITS_RESULTS_KEEP`` downloaded runs of each mode are kept.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from fruits_contract import outputs
from fruits_features.config import PipelineConfig
from fruits_features.output_layout import SOURCE, RunFolder
from fruits_features.run_params import RunParams
from fruits_features.s3 import PARTIAL, RunS3Hook
from fruits_features.s3_layout import RunLayout

log = logging.getLogger(__name__)

ALL, SUMMARY = "all", "summary"
# What each scope copies: sub-prefixes of the run's folder.
COPIED = {ALL: ("",), SUMMARY: outputs.SUMMARY_PARTS}


def download_scope(config: PipelineConfig, params: RunParams) -> str:
    """``all`` or ``summary``: ``auto`` copies all of a run of capped size only."""
    if config.core.download == "auto":
        return SUMMARY if params.spec.cap(params.limit) is None else ALL
    return config.core.download


def prune_results(mode_dir: Path, keep: int, current: Path) -> list[Path]:
    """Remove the oldest downloaded runs of a mode beyond ``keep``, and half downloads left
    by killed tasks; never ``current``.

    Best effort: the run is computed and published by then. Runs are ordered by when they
    were downloaded (their ``_SOURCE`` marker, written last); what is not a downloaded run
    (a stray file, a link a user made, even to a run) is left alone and never followed; a
    folder that cannot be removed is named in a warning.
    """

    def downloaded_at(folder: Path) -> float:
        return (folder / SOURCE).stat().st_mtime

    runs = [p for p in mode_dir.iterdir() if not p.is_symlink() and (p / SOURCE).is_file()]
    runs.sort(key=downloaded_at, reverse=True)
    # Half downloads of killed tasks (one run of the DAG at a time: none is in progress).
    half = [p for p in mode_dir.glob(f"*{PARTIAL}") if not p.is_symlink() and p.is_dir()]
    removed = []
    for folder in [*runs[keep:], *half]:
        if folder.resolve() == current.resolve():
            continue
        try:
            shutil.rmtree(folder)
        except OSError as error:
            log.warning("Could not remove the local copy of an older run %s: %s", folder, error)
            continue
        removed.append(folder)
        log.info("Removed the local copy of an older run (S3 keeps it): %s", folder)
    return removed


def download_run(s3: RunS3Hook, layout: RunLayout, target: Path, scope: str, keep: int) -> int:
    """Copy the run's outputs (all, or its summary) to ``target``, mark where they came
    from, and keep the mode's last ``keep`` copies; the file count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    count = s3.download_prefix(layout.bucket, layout.output_prefix, target, COPIED[scope])
    # Where this copy came from: what the report and the summary name, and the key the
    # results are pruned by (written last).
    RunFolder(target).source_marker.write_text(layout.output_uri + "\n", encoding="utf-8")
    log.info("Downloaded %d files from %s/ to %s", count, layout.output_uri, target)
    if scope == SUMMARY:
        log.info("The data sets stay on S3 (FRUITS_DOWNLOAD=%s): %s/", scope, layout.output_uri)
    prune_results(target.parent, keep, target)
    return count
