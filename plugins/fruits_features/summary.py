"""Summary of the newest run in a results folder, checked like the DAG checks it.

python -m fruits_features.summary results/            # newest run
python -m fruits_features.summary results/mini/<run>  # that run
"""

from __future__ import annotations

import sys
from pathlib import Path

from fruits_contract import outputs as layout
from fruits_features.output_facts import facts_in_folder
from fruits_features.output_layout import RunFolder, find_runs
from fruits_features.output_validation import Expected, OutputValidationError, validate_run


def describe(folder: RunFolder) -> str:
    info = folder.read_model_info()
    # A summary download (FRUITS_DOWNLOAD) left the data sets on S3, where validate_outputs
    # checked them; a whole copy is checked here.
    downloaded = bool(folder.parts(layout.METADATA, layout.PARQUET))
    report = validate_run(
        folder.root,
        Expected(mode=info["mode"], pca_components=info["pca_components"]),
        facts_in_folder(folder.root) if downloaded else None,
    )
    counts = info["counts"]
    features = info.get("stages", {}).get("features", {})
    location = folder.downloaded_from() or info["output"]
    return "\n".join(
        [
            f"run        {info['run_id']} (mode {info['mode']}, engine {info['engine']})",
            f"images     {report.images_selected} selected, {report.features} with features, "
            f"{report.errors} errors",
            f"features   {counts.get('features_computed', report.features)} computed, "
            f"{counts.get('features_reused', 0)} reused from the feature store"
            + ("" if downloaded else "; data sets left on S3 (FRUITS_DOWNLOAD=summary)"),
            f"variance   {report.variance_kept:.1%} kept by {report.pca_components} components",
            f"speed      {features.get('images_per_second', 0):.1f} images/s (feature stage), "
            f"{report.duration_seconds:.0f} s in Spark",
            f"outputs    {location}",
            f"local copy {folder.root}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = RunFolder(Path(args[0] if args else "results"))
    if target.is_run():
        folder = target
    else:
        runs = find_runs(target.root)
        if not runs:
            print(f"no run found under {target.root}", file=sys.stderr)
            return 1
        folder = runs[-1]
        print(f"{len(runs)} run(s) under {target.root}; newest:")
    try:
        print(describe(folder))
    except OutputValidationError as exc:
        print(f"{folder.root}: outputs do not validate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
