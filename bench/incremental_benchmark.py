"""Benchmark the feature store: a cold run, then a warm run with ~1% new images.

    .venv/bin/python bench/incremental_benchmark.py                      # 19136 and 57950 images
    .venv/bin/python bench/incremental_benchmark.py --images 2000 --new-fraction 0.05

For each bank size, in one invocation: the bank minus ~1% of its images (held back,
spread over the classes) is run with an empty feature store (cold); the held-back images
are then added and the whole bank is run again on the same store (warm), as a night after
new photos arrived. Prints the feature stage and whole-job times of both, their ratio,
peak memory of the whole process tree, and the warm run's stages (where its time goes).
Nothing here is a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from benchmark import REPO, SOURCES, WEIGHTS, gib, print_rows, spark_submit  # noqa: E402
from inputs import prepare_input  # noqa: E402

from fruits_features.job_invocation import (  # noqa: E402
    JobInvocation,
    JobRequest,
    find_spark_submit,
    local_submit_options,
)
from fruits_features.job_package import build_job_zip  # noqa: E402


def hold_back(bank: Path, fraction: float, held: Path) -> int:
    """Move every ``1/fraction``-th image (by sorted path: spread over the classes) out."""
    images = sorted(p for p in (bank / "Training").rglob("*") if p.is_file())
    step = max(1, round(1 / fraction))
    moved = 0
    for image in images[::step]:
        destination = held / image.relative_to(bank)
        destination.parent.mkdir(parents=True, exist_ok=True)
        image.rename(destination)
        moved += 1
    return moved


def put_back(held: Path, bank: Path) -> None:
    for image in sorted(p for p in held.rglob("*") if p.is_file()):
        image.rename(bank / image.relative_to(held))


def run_job(work: Path, bank: Path, store: Path, name: str, opts: argparse.Namespace) -> dict:
    output = work / f"output-{name}"
    invocation = JobInvocation(
        entry_point=str(REPO / "spark" / "process_fruits_data.py"),
        job_zip=str(work / "fruits_job.zip"),
        request=JobRequest(
            input_uri=str(bank),
            output_uri=str(output),
            weights_uri=str(WEIGHTS),
            mode="full",
            pca_components=50,
            run_id=f"incremental-{name}",
            engine=opts.engine,
            feature_store=str(store),
        ),
    )
    command = invocation.spark_submit(
        executable=str(find_spark_submit()), options=local_submit_options(opts.master)
    )
    log = work / f"job-{name}.log"
    print(f"job {name}: {' '.join(command[-12:])}", flush=True)
    wall, memory, code = spark_submit(command, log)
    if code != 0:
        raise SystemExit(f"job {name} failed (exit {code}); see {log}")
    info = json.loads((output / "model_info" / "model_info.json").read_text())
    info["wall"] = wall
    info["peak_memory"] = memory.peak
    return info


def compare(n: int, held: int, cold: dict, warm: dict) -> list[tuple[str, str, str]]:
    def features(info: dict) -> float:
        return info["stages"]["features"]["seconds"]

    counts = warm["counts"]
    rows = [
        (f"{n} images: cold run on {n - held} images, feature stage", f"{features(cold):.1f} s",
         f"{cold['counts']['features_computed']} computed"),
        (f"{n} images: warm run, +{held} new, feature stage", f"{features(warm):.1f} s",
         f"{counts['features_computed']} computed, {counts['features_reused']} reused"),
        (f"{n} images: feature stage, cold / warm", f"{features(cold) / features(warm):.1f}x", ""),
        (f"{n} images: whole job (in Spark), cold", f"{cold['duration_seconds']:.1f} s", ""),
        (f"{n} images: whole job (in Spark), warm", f"{warm['duration_seconds']:.1f} s", ""),
        (f"{n} images: whole job, cold / warm",
         f"{cold['duration_seconds'] / warm['duration_seconds']:.1f}x", ""),
        (f"{n} images: whole spark-submit, cold / warm",
         f"{cold['wall']:.1f} s / {warm['wall']:.1f} s", f"{cold['wall'] / warm['wall']:.1f}x"),
        (f"{n} images: peak memory, cold", gib(cold["peak_memory"]), ""),
        (f"{n} images: peak memory, warm", gib(warm["peak_memory"]), ""),
        (f"{n} images: warm stages", ", ".join(
            f"{k} {v['seconds']:.1f} s" for k, v in warm["stages"].items()), ""),
    ]  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="19136,57950", help="comma-separated bank sizes")
    parser.add_argument("--new-fraction", type=float, default=0.01)
    parser.add_argument("--source", type=Path, default=next(p for p in SOURCES if p.exists()))
    parser.add_argument("--engine", default="onnxruntime")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    opts = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fruits-bench-incremental-"))
    build_job_zip(REPO, work)
    rows: list[tuple[str, str, str]] = []
    for n in (int(size) for size in opts.images.split(",")):
        bank = work / f"bank-{n}"
        prepare_input(opts.source, n, bank)
        held = hold_back(bank, opts.new_fraction, work / f"held-{n}")
        print(f"bank of {n} images from {opts.source}, {held} held back; work folder {work}")
        store = work / f"store-{n}"
        cold = run_job(work, bank, store, f"{n}-cold", opts)
        put_back(work / f"held-{n}", bank)
        warm = run_job(work, bank, store, f"{n}-warm", opts)
        if warm["counts"]["features_computed"] != held:
            raise SystemExit(
                f"warm run computed {warm['counts']['features_computed']} images, not the "
                f"{held} new ones"
            )
        rows += compare(n, held, cold, warm)
        if not opts.keep:
            shutil.rmtree(bank)

    print_rows(rows)
    if not opts.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
