"""Extract: where the run reads and writes, and the files of the bank it lists, selects and
skips. Every check that can fail on bad input runs here, before any model is built."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession

from fruits_contract.job_request import JobRequest, too_few_images
from fruits_contract.outputs import read_file_rows
from fruits_job import storage
from fruits_job.listing import list_bank
from fruits_job.progress import StageTimer
from fruits_job.selection import Image, ListedFile, Selection, select_images

log = logging.getLogger("fruits_job")

# A file the run does not process: (path in the bank, label, bytes, reason).
SkippedFile = tuple[str, str, int, str]


class JobInputError(ValueError):
    """Bad input or arguments: reported as one line, exit code 2."""


class BankPaths:
    """Where a listed file lives in the bank: the job may read a copy (``--input-as``)."""

    def __init__(self, input_root: str, input_as: str | None) -> None:
        self.root = input_root.rstrip("/")
        self.bank = (input_as or input_root).rstrip("/")

    def __call__(self, path: str) -> str:
        if path == self.root or path.startswith(self.root + "/"):
            return self.bank + path[len(self.root) :]
        return path


@dataclass(frozen=True)
class RunPaths:
    """The run's locations, qualified (``file:/...`` for local paths)."""

    input_root: str
    output: str
    weights: str
    # What the outputs and messages name: the bank and the run's prefix, not a copy.
    in_bank: BankPaths
    published: str

    @property
    def training(self) -> str:
        return f"{self.input_root}/Training"

    @classmethod
    def checked(cls, spark: SparkSession, request: JobRequest) -> RunPaths:
        """The request's locations; refuses an output prefix in use, missing weights or
        a bank without Training/."""
        output = storage.qualify(spark, request.output_uri).rstrip("/")
        input_root = storage.qualify(spark, request.input_uri).rstrip("/")
        paths = cls(
            input_root=input_root,
            output=output,
            weights=storage.qualify(spark, request.weights_uri),
            in_bank=BankPaths(input_root, request.input_as),
            published=(request.output_as or output).rstrip("/"),
        )
        if storage.is_non_empty_dir(spark, output):
            raise JobInputError(f"output {output} already holds files; each run needs a new prefix")
        if not storage.exists(spark, paths.weights):
            raise JobInputError(f"weights file not found: {paths.weights}")
        if not storage.exists(spark, paths.training):
            raise JobInputError(f"no Training/ folder under {input_root}")
        return paths


@dataclass(frozen=True)
class Bank:
    """What the run found in the bank: every file listed, the images it processes and the
    files it skips (with why), named where they live in the bank."""

    listed: list[ListedFile]
    selection: Selection
    skipped: list[SkippedFile]
    files_listed: int  # listed by the job or, for names it cannot list, by the caller
    training: str
    in_bank: BankPaths

    @property
    def images(self) -> list[Image]:
        return self.selection.images

    def check_enough(self, mode: str, k: int) -> None:
        """Refuse a run whose images cannot make a K-component PCA."""
        images = len(self.images)
        if images == 0:
            raise JobInputError(f"no images for mode {mode!r} under {self.in_bank(self.training)}")
        problem = too_few_images(images, k)
        if problem:
            raise JobInputError(problem)


def read_bank(spark: SparkSession, paths: RunPaths, request: JobRequest, timer: StageTimer) -> Bank:
    """List the mode's class folders and select the run's images (the ``list`` stage), then
    gather every skipped file, those only the caller could list (``--also-skipped``) too;
    refuse a run its images cannot make."""
    with timer.stage("list"):
        listed = list_bank(spark, paths.training, request.mode)
        selection = select_images(listed, request.mode, request.limit, paths.training)
    in_bank = paths.in_bank
    skipped = [(in_bank(f.path), f.label or "", f.size, f.reason) for f in selection.skipped]
    files_listed = selection.files_listed
    if request.also_skipped:
        seen = {in_bank(f.path) for f in listed}
        text = storage.read_text(spark, request.also_skipped)
        extra = [row for row in read_file_rows(text) if row[0] not in seen]
        skipped = sorted(skipped + extra)
        files_listed += len(extra)
    for path, _, _, reason in skipped:
        log.warning("skipping %s: %s", path, reason)
    bank = Bank(listed, selection, skipped, files_listed, paths.training, in_bank)
    bank.check_enough(request.mode, request.pca_components)
    log.info(
        "run %s: mode %s, %d images of %d classes selected from %d files under %s",
        request.run_id,
        request.mode,
        len(bank.images),
        len({image.label for image in bank.images}),
        selection.files_listed,
        paths.training,
    )
    return bank
