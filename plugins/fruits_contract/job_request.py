"""The job's command lines: one definition that builds the arguments (the DAG's step, the local
backend, tests, benchmarks) and parses them (the job).

Each field of a request is one option: its flag, how its text is read and checked, and its
help. ``to_argv`` writes a request as arguments, ``from_argv`` reads them back, so a flag
renamed on one side cannot be missed by the other. Two programs: the job
(``process_fruits_data``, ``JobRequest``) and the feature store's maintenance
(``maintain_feature_store``, ``MaintenanceRequest``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, ClassVar, NoReturn, Self

from fruits_contract.engines import DEFAULT_ENGINE, ENGINES, FEATURE_DIM
from fruits_contract.modes import MODES

JOB_NAME = "process_fruits_data"
MAINTENANCE_NAME = "maintain_feature_store"
# How the job's own error line starts: the last line of a failed run's log.
ERROR_PREFIX = f"{JOB_NAME}: error:"
ERROR_PREFIXES = (ERROR_PREFIX, f"{MAINTENANCE_NAME}: error:")


class JobRequestError(ValueError):
    """Arguments the job cannot run with; the message says which and why."""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _components(text: str) -> int:
    value = int(text)
    if not 1 <= value <= FEATURE_DIM:
        raise argparse.ArgumentTypeError(f"must be between 1 and {FEATURE_DIM}, got {value}")
    return value


def _hours(text: str) -> int:
    value = int(text)
    if value < 168:
        raise argparse.ArgumentTypeError(
            f"must be at least 168 (Delta Lake's default, 7 days), got {value}"
        )
    return value


def _image_size(text: str) -> int:
    value = int(text)
    if not 32 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"must be between 32 and 1024 pixels, got {value}")
    return value


def option(
    flag: str,
    help: str,
    *,
    default: Any = MISSING,
    read: Callable[[str], Any] = str,
    choices: Sequence[str] | None = None,
    metavar: str | None = None,
    always: bool = False,
) -> Any:
    """A field of JobRequest: its command-line flag, how its text is read, its help.

    ``always``: written by ``to_argv`` even at its default (what the job records is then
    visible in the step's arguments); other options only when they differ from it.
    """
    meta = {"flag": flag, "help": help, "read": read, "choices": choices, "metavar": metavar}
    return field(default=default, metadata={**meta, "always": always})


class CommandLine:
    """A program's arguments as a frozen, keyword-only dataclass of ``option`` fields."""

    PROG: ClassVar[str]
    DESCRIPTION: ClassVar[str]

    def to_argv(self) -> list[str]:
        """The program's arguments (after its entry point)."""
        argv: list[str] = []
        for spec in fields(self):  # type: ignore[arg-type]
            value = getattr(self, spec.name)
            if spec.type == "bool":
                argv += [spec.metadata["flag"]] if value else []
            elif spec.default is MISSING or spec.metadata["always"] or value != spec.default:
                argv += [spec.metadata["flag"], str(value)]
        return argv

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> Self:
        """Parse the program's arguments; JobRequestError names what is wrong."""
        parser = _Parser(prog=cls.PROG, description=cls.DESCRIPTION)
        for spec in fields(cls):  # type: ignore[arg-type]
            _add(parser, spec)
        return cls(**vars(parser.parse_args(list(argv))))

    def moved(self, **locations: str | None) -> Self:
        """The same run reading and writing elsewhere (e.g. a local staging copy)."""
        return replace(self, **locations)  # type: ignore[type-var]


@dataclass(frozen=True, kw_only=True)
class JobRequest(CommandLine):
    """What one run of the job does: where it reads and writes, and with which parameters.

    Fields are in the order ``to_argv`` writes them.
    """

    PROG: ClassVar[str] = JOB_NAME
    DESCRIPTION: ClassVar[str] = (
        "MobileNetV2 features + PCA over Fruits-360 images (docs/contract.md)."
    )

    input_uri: str = option("--input", "folder holding Training/<class>/<image>")
    output_uri: str = option("--output", "this run's output prefix (must be new)")
    mode: str = option(
        "--mode", "; ".join(mode.label for mode in MODES.values()), choices=tuple(MODES)
    )
    pca_components: int = option(
        "--pca-components", "components kept", default=50, read=_components, metavar="K",
        always=True,
    )  # fmt: skip
    weights_uri: str = option("--weights", "MobileNetV2 no-top .weights.h5 file")
    run_id: str | None = option(
        "--run-id", "recorded in model_info (default: UTC time)", default=None
    )
    engine: str = option(
        "--engine",
        "tensorflow is the reference; the others run a graph converted from it",
        default=DEFAULT_ENGINE,
        choices=tuple(ENGINES),
        always=True,
    )
    limit: int | None = option("--limit", "at most N images", default=None, read=_positive)
    partitions: int | None = option(
        "--partitions",
        "feature-stage tasks (default: a multiple of Spark's default parallelism)",
        default=None,
        read=_positive,
    )
    image_size: int = option(
        "--image-size", "model input size", default=224, read=_image_size, metavar="PX"
    )
    # Small batches keep activations in cache: 16 beat 64 by ~10% for every engine here.
    batch_size: int = option("--batch-size", "images per inference", default=16, read=_positive)
    # Where the bank really lives, when the job reads a copy of it: the outputs name these.
    input_as: str | None = option(
        "--input-as",
        "where --input's files really live (the job reads a copy): outputs name these",
        default=None,
        metavar="URI",
    )
    # The bank's listing from an S3 Inventory report instead of listing the bank.
    inventory: str | None = option(
        "--inventory",
        "manifest.json of an S3 Inventory report (Parquet) of the bank: its listing",
        default=None,
        metavar="URI",
    )
    # Features of unchanged images are reused from there; recompute refreshes every one.
    feature_store: str | None = option(
        "--feature-store",
        "reuse the features stored there for unchanged images, and store the new ones",
        default=None,
        metavar="URI",
    )
    recompute: bool = option(
        "--recompute",
        "with --feature-store: compute every image and store it again (refresh)",
        default=False,
    )
    export_features: bool = option(
        "--export-features",
        "also write the run's 1280-d vectors (features/, Parquet and CSV)",
        default=False,
    )

    def __post_init__(self) -> None:
        if self.recompute and not self.feature_store:
            raise JobRequestError("--recompute refreshes a feature store: it needs --feature-store")


@dataclass(frozen=True, kw_only=True)
class MaintenanceRequest(CommandLine):
    """What one maintenance of the feature store does: compact the table, then delete the
    files no version within the retention uses."""

    PROG: ClassVar[str] = MAINTENANCE_NAME
    DESCRIPTION: ClassVar[str] = "OPTIMIZE and VACUUM the feature store's Delta table."

    feature_store: str = option("--feature-store", "the store holding the table", metavar="URI")
    output_uri: str = option(
        "--output", "where the maintenance's record goes (must be new)", metavar="URI"
    )
    run_id: str = option("--run-id", "recorded with the maintenance")
    retention_hours: int = option(
        "--retention-hours",
        "VACUUM keeps the files the table's versions of this many hours use",
        default=168,
        read=_hours,
        always=True,
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise JobRequestError(message)


def _add(parser: argparse.ArgumentParser, spec: Field) -> None:
    meta = spec.metadata
    if spec.type == "bool":
        parser.add_argument(meta["flag"], dest=spec.name, action="store_true", help=meta["help"])
        return
    extra: dict[str, Any] = {"required": True} if spec.default is MISSING else {}
    if spec.default is not MISSING:
        extra["default"] = spec.default
    parser.add_argument(
        meta["flag"],
        dest=spec.name,
        type=meta["read"],
        choices=meta["choices"],
        metavar=meta["metavar"],
        help=meta["help"],
        **extra,
    )


def too_few_images(images: int, k: int) -> str | None:
    """Why a run of ``images`` images cannot make a K-component PCA, or None when it can: what
    the job refuses before building a model, and check_inputs before starting a cluster."""
    if images < 2:
        return f"a PCA needs at least 2 images; this run would process {images}"
    if k > images:
        return f"--pca-components {k} is more than the {images} images this run would process"
    return None
