"""python -m fruits_features.report RUN_FOLDER [--out DIR]: prints the report's path."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fruits_features.report.build import build_report
from fruits_features.report.load import RunFolderError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fruits_features.report",
        description="Write report.html (self-contained) and its plots for a run output folder.",
    )
    parser.add_argument("run_folder", type=Path, help="a downloaded run output folder")
    parser.add_argument("--out", type=Path, help="output folder (default: RUN_FOLDER/report)")
    args = parser.parse_args(argv)
    try:
        files = build_report(args.run_folder, args.out)
    except RunFolderError as exc:
        print(f"fruits_features.report: error: {exc}", file=sys.stderr)
        return 2
    print(files.html)
    return 0


if __name__ == "__main__":
    sys.exit(main())
