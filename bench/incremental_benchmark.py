"""Benchmark the feature store: cold run, warm run with ~1% new images, and a month of nights.

    .venv/bin/python bench/incremental_benchmark.py --baseline ../baseline
    .venv/bin/python bench/incremental_benchmark.py --images 2000 --nights 5

For each bank size, in one invocation: the bank minus ~1% of its images (held back, spread
over the classes) is run with an empty feature store (cold); the held-back images are then
added and the whole bank is run again on the same store (warm), as a night after new photos
arrived. Then (``--nights``, on the first size) a month of nights is simulated: each night
1% of the bank's size in new rows goes into the store, as nightly runs would put them; a
warm run then measures the lookup over that store, and again after the store's maintenance
(OPTIMIZE, VACUUM). With ``--baseline DIR`` (a checkout of an earlier version, e.g. a git
worktree) everything runs with that checkout's store too, beside this one, on the same
bank: the figures compare in one invocation.

Prints, for each: the feature stage and whole-job times, their ratio, the files the lookup
reads, and peak memory: the whole process tree, the JVM (driver and executors in local
mode) and the driver's Python process. Nothing here is a test: it measures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from benchmark import REPO, SOURCES, WEIGHTS, finish, gib, spark_submit  # noqa: E402
from inputs import prepare_input  # noqa: E402

from fruits_features.job_invocation import (  # noqa: E402
    find_spark_submit,
    local_spark_env,
    local_submit_options,
)

NIGHTS_SCRIPT = REPO / "bench" / "simulate_nights.py"


@dataclass(frozen=True)
class Tree:
    """A checkout whose job runs: this one, or an earlier one (``--baseline``)."""

    name: str
    root: Path
    zip: Path

    @classmethod
    def built(cls, name: str, root: Path, work: Path) -> Tree:
        """The checkout with its job zip, built by its own job_package."""
        folder = work / f"zip-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "fruits_features.job_package", str(folder)],
            cwd=root,
            env={**local_spark_env(), "PYTHONPATH": str(root / "plugins")},
            check=True,
            capture_output=True,
        )
        return cls(name, root, folder / "fruits_job.zip")


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


def submit(tree: Tree, entry: str, args: list[str], log: Path, opts: argparse.Namespace):
    """spark-submit of one of the tree's entry points; wall time and memory."""
    command = [
        str(find_spark_submit()),
        *local_submit_options(opts.master),
        *("--py-files", str(tree.zip)),
        str(tree.root / "spark" / entry),
        *args,
    ]
    wall, memory, code = spark_submit(command, log)
    if code != 0:
        raise SystemExit(f"{log.stem} failed (exit {code}); see {log}")
    return wall, memory


def run_job(tree: Tree, work: Path, bank: Path, store: Path, name: str, opts) -> dict:
    output = work / f"output-{tree.name}-{name}"
    args = [
        *("--input", str(bank), "--output", str(output), "--mode", "full"),
        *("--weights", str(WEIGHTS), "--pca-components", "50", "--engine", opts.engine),
        *("--run-id", f"incremental-{name}", "--feature-store", str(store)),
    ]
    print(f"{tree.name}: job {name}", flush=True)
    wall, memory = submit(
        tree, "process_fruits_data.py", args, work / f"job-{tree.name}-{name}.log", opts
    )
    info = json.loads((output / "model_info" / "model_info.json").read_text())
    info.update(wall=wall, memory=memory)
    return info


def files_in_store(store: Path) -> int:
    """Data files a lookup reads: the committed segments' (earlier stores), or the Delta
    table's at its newest version (its log replayed: adds minus removes)."""
    table = store / "features" / "_delta_log"
    if not table.is_dir():
        segments = {json.loads(c.read_text())["segment"] for c in store.glob("*/commits/*.json")}
        return sum(1 for name in segments for _ in store.glob(f"*/segments/{name}/*.parquet"))
    active: set[str] = set()
    for commit in sorted(table.glob("*.json")):
        for action in map(json.loads, commit.read_text().splitlines()):
            if "add" in action:
                active.add(action["add"]["path"])
            elif "remove" in action:
                active.discard(action["remove"]["path"])
    return len(active)


def figures(label: str, info: dict) -> list[tuple[str, str, str]]:
    memory = info["memory"]
    return [
        (f"{label}: feature stage", f"{info['stages']['features']['seconds']:.1f} s",
         f"{info['counts']['features_computed']} computed, "
         f"{info['counts']['features_reused']} reused"),
        (f"{label}: whole job (in Spark)", f"{info['duration_seconds']:.1f} s",
         f"spark-submit {info['wall']:.1f} s"),
        (f"{label}: peak memory", gib(memory.peak),
         f"JVM {gib(memory.peak_jvm)}, driver Python {gib(memory.peak_driver_python)}"),
    ]  # fmt: skip


def ratios(label: str, cold: dict, warm: dict) -> list[tuple[str, str, str]]:
    def features(info: dict) -> float:
        return info["stages"]["features"]["seconds"]

    return [
        (f"{label}: feature stage, cold / warm", f"{features(cold) / features(warm):.1f}x", ""),
        (f"{label}: whole job, cold / warm",
         f"{cold['duration_seconds'] / warm['duration_seconds']:.1f}x", ""),
        (f"{label}: warm stages", ", ".join(
            f"{k} {v['seconds']:.1f} s" for k, v in warm["stages"].items()), ""),
    ]  # fmt: skip


def simulate_nights(tree: Tree, work: Path, store: Path, n: int, opts) -> None:
    """``opts.nights`` nights, each adding 1% of ``n`` rows, through the tree's store code."""
    sha = hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    args = [str(store), sha, opts.engine, str(opts.nights), str(max(1, n // 100))]
    command = [
        str(find_spark_submit()),
        *local_submit_options(opts.master),
        *("--py-files", str(tree.zip)),
        str(NIGHTS_SCRIPT),
        *args,
    ]
    log = work / f"nights-{tree.name}-{n}.log"
    print(f"{tree.name}: {opts.nights} nights of {n // 100} new rows", flush=True)
    _, _, code = spark_submit(command, log)
    if code != 0:
        raise SystemExit(f"simulating nights failed (exit {code}); see {log}")


def maintain(tree: Tree, work: Path, store: Path, opts) -> float:
    args = ["--feature-store", str(store), "--output", str(work / f"maintenance-{tree.name}")]
    args += ["--run-id", "bench-maintenance"]
    wall, _ = submit(
        tree, "maintain_feature_store.py", args, work / f"maintenance-{tree.name}.log", opts
    )
    return wall


def a_month_of_nights(trees: list[Tree], work: Path, bank: Path, n: int, opts) -> list[tuple]:
    rows = []
    for tree in trees:
        store = work / f"store-{tree.name}-{n}"
        simulate_nights(tree, work, store, n, opts)
        label = f"{n} images, {tree.name}, after {opts.nights} nights"
        info = run_job(tree, work, bank, store, f"{n}-nights", opts)
        rows += [(f"{label}: files the lookup reads", str(files_in_store(store)), "")]
        rows += figures(label, info)
        if (tree.root / "spark" / "maintain_feature_store.py").is_file():
            wall = maintain(tree, work, store, opts)
            label = f"{n} images, {tree.name}, after {opts.nights} nights and maintenance"
            info = run_job(tree, work, bank, store, f"{n}-maintained", opts)
            rows += [(f"{label}: files the lookup reads", str(files_in_store(store)),
                      f"maintenance {wall:.1f} s")]  # fmt: skip
            rows += figures(label, info)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="19136,57950", help="comma-separated bank sizes")
    parser.add_argument("--new-fraction", type=float, default=0.01)
    parser.add_argument("--nights", type=int, default=30, help="0: no month of nights")
    parser.add_argument("--baseline", type=Path, help="an earlier checkout to run beside")
    parser.add_argument("--source", type=Path, default=next(p for p in SOURCES if p.exists()))
    parser.add_argument("--engine", default="onnxruntime")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    opts = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fruits-bench-incremental-"))
    trees = [Tree.built("this", REPO, work)]
    if opts.baseline:
        trees.insert(0, Tree.built("baseline", opts.baseline.resolve(), work))
    rows: list[tuple[str, str, str]] = []
    for index, n in enumerate(int(size) for size in opts.images.split(",")):
        bank = work / f"bank-{n}"
        prepare_input(opts.source, n, bank)
        held = hold_back(bank, opts.new_fraction, work / f"held-{n}")
        print(f"bank of {n} images from {opts.source}, {held} held back; work folder {work}")
        cold = {t.name: run_job(t, work, bank, work / f"store-{t.name}-{n}", f"{n}-cold", opts)
                for t in trees}  # fmt: skip
        put_back(work / f"held-{n}", bank)
        for tree in trees:
            warm = run_job(tree, work, bank, work / f"store-{tree.name}-{n}", f"{n}-warm", opts)
            if warm["counts"]["features_computed"] != held:
                raise SystemExit(
                    f"{tree.name}: the warm run computed {warm['counts']['features_computed']}"
                    f" images, not the {held} new ones"
                )
            label = f"{n} images, {tree.name}"
            rows += figures(f"{label}, cold ({n - held})", cold[tree.name])
            rows += figures(f"{label}, warm (+{held})", warm)
            rows += ratios(label, cold[tree.name], warm)
        if index == 0 and opts.nights:
            rows += a_month_of_nights(trees, work, bank, n, opts)
        if not opts.keep:
            shutil.rmtree(bank)

    return finish(rows, work, opts.keep)


if __name__ == "__main__":
    sys.exit(main())
