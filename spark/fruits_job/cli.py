"""Command-line arguments of the job, validated before Spark starts."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import NoReturn

from fruits_job.engines import DEFAULT_ENGINE, ENGINES, FEATURE_DIM
from fruits_job.modes import MODES

PROG = "process_fruits_data"


class JobInputError(ValueError):
    """Bad input or arguments: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: this lands in an EMR step's stderr and in
        # an Airflow task log, where the last line is what people read.
        print(f"{PROG}: error: {message}", file=sys.stderr)
        sys.exit(2)


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


def _image_size(text: str) -> int:
    value = int(text)
    if not 32 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"must be between 32 and 1024 pixels, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    modes = "; ".join(f"{mode.name}: {mode.description}" for mode in MODES.values())
    parser = _Parser(
        prog=PROG,
        description="MobileNetV2 features + PCA over Fruits-360 images (docs/contract.md).",
    )
    parser.add_argument("--input", required=True, help="folder holding Training/<class>/<image>")
    parser.add_argument("--output", required=True, help="this run's output prefix (must be new)")
    parser.add_argument("--mode", required=True, choices=list(MODES), help=modes)
    parser.add_argument("--weights", required=True, help="MobileNetV2 no-top .weights.h5 file")
    parser.add_argument("--pca-components", type=_components, default=50, metavar="K")
    parser.add_argument("--run-id", default=None, help="recorded in model_info (default: UTC time)")
    parser.add_argument("--limit", type=_positive, default=None, help="at most N images")
    parser.add_argument("--image-size", type=_image_size, default=224, metavar="PX")
    # Small batches keep activations in cache: 16 beat 64 by ~10% for every engine here.
    parser.add_argument("--batch-size", type=_positive, default=16, help="images per inference")
    parser.add_argument(
        "--partitions", type=_positive, default=None, help="default: Spark's default parallelism"
    )
    parser.add_argument(
        "--input-as",
        default=None,
        metavar="URI",
        help="where --input's files really live (the job reads a copy): outputs name these",
    )
    parser.add_argument(
        "--output-as",
        default=None,
        metavar="URI",
        help="where the outputs will be published (the job writes a copy): messages name it",
    )
    parser.add_argument(
        "--weights-as",
        default=None,
        metavar="URI",
        help="where --weights really lives (the job reads a copy): model_info names it",
    )
    parser.add_argument(
        "--also-skipped",
        default=None,
        metavar="URI",
        help="CSV (path,label,bytes,reason) of files Spark cannot list (hidden-looking names) "
        "that the caller found: reported with the run's skipped files",
    )
    parser.add_argument(
        "--feature-store",
        default=None,
        metavar="URI",
        help="reuse the features stored there for unchanged images, and store the new ones",
    )
    parser.add_argument(
        "--recompute",
        action="store_true",
        help="with --feature-store: compute every image and store it again (refresh)",
    )
    parser.add_argument(
        "--engine",
        choices=list(ENGINES),
        default=DEFAULT_ENGINE,
        help="tensorflow is the reference; the others run a graph converted from it",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.recompute and not args.feature_store:
        parser.error("--recompute refreshes a feature store: it needs --feature-store")
    if args.run_id is None:
        args.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return args
