"""Benchmark how the pipeline grows with the bank, in one invocation.

    .venv/bin/python bench/scale_benchmark.py --curve 100000,300000,1000000
    .venv/bin/python bench/scale_benchmark.py --compare 57950 --baseline ../baseline

``--curve``: banks of N tiny files on local disk through the job with the ``synthetic``
engine (a vector from each file's bytes: the plumbing at full scale, without the model's
cost), each cold on an empty feature store, then warm after 1% new files. For each N: the
driver's Python peak (the job's own ru_maxrss) and the JVM's (sampled RSS), time per image,
bytes written per image of the bank cold and warm, the 1280-d vectors the warm run wrote;
and the Airflow tasks' peak memory (check_inputs on an S3 Inventory report of N objects,
download, validation and report on a run of N images, on a local SeaweedFS).

``--compare N --baseline DIR``: N real images through both checkouts with ONNX Runtime,
cold, no feature store: their speed and whether their PCA agrees (explained variance).

Nothing here is a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO)]
from benchmark import SOURCES, WEIGHTS, finish, gib  # noqa: E402
from incremental_benchmark import Tree, submit  # noqa: E402
from inputs import prepare_input  # noqa: E402

CLASSES = 200


def write_tiny_bank(root: Path, count: int, start: int = 0) -> None:
    """Files ``start`` .. ``start + count`` of a bank: a few distinct bytes each, spread over
    ``CLASSES`` class folders (the synthetic engine reads bytes, decodes nothing)."""
    for index in range(start, start + count):
        folder = root / "Training" / f"Class {index % CLASSES:03d}"
        if index - start < CLASSES:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index}.jpg").write_bytes(index.to_bytes(8, "little"))


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def store_rows_added(store: Path) -> int:
    """Rows the table's newest version added (its commit's operation metrics)."""
    log = store / "features" / "_delta_log"
    newest = max(log.glob("*.json"))
    for action in map(json.loads, newest.read_text().splitlines()):
        if "commitInfo" in action:
            metrics = action["commitInfo"].get("operationMetrics", {})
            return int(metrics.get("numTargetRowsInserted", metrics.get("numOutputRows", 0)))
    return 0


def job(tree: Tree, work: Path, bank: Path, name: str, opts, *extra: str) -> dict:
    output = work / f"output-{tree.name}-{name}"
    args = [
        *("--input", str(bank), "--output", str(output), "--mode", "full"),
        *("--weights", str(WEIGHTS), "--pca-components", "50", "--run-id", name),
        *extra,
    ]
    print(f"{tree.name}: job {name}", flush=True)
    wall, memory = submit(tree, "process_fruits_data.py", args, work / f"job-{name}.log", opts)
    info = json.loads((output / "model_info" / "model_info.json").read_text())
    info.update(wall=wall, memory=memory, written=size_of(output))
    return info


def airflow_tasks(n: int, work: Path) -> dict:
    """The Airflow tasks' peaks on an inventory of ``n`` objects and a run of ``n`` images."""
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow-home"))
    from fruits_features.run_params import RunParams
    from fruits_features.settings import config_at_run_time
    from tests.airflow.scale import (
        bank_keys,
        replay_tasks,
        synthetic_objects,
        write_inventory,
        write_run_outputs,
    )
    from tests.s3_server import S3_ACCESS_KEY, S3_SECRET_KEY, seaweedfs

    folder = work / f"s3-{n}"
    folder.mkdir()
    with seaweedfs(folder, "bench") as server:
        client = server.client()
        inventory = write_inventory(
            client, "bench", "inventory", synthetic_objects(bank_keys("bank", n, CLASSES))
        )
        connection = {
            "conn_type": "aws",
            "login": S3_ACCESS_KEY,
            "password": S3_SECRET_KEY,
            "extra": {"region_name": "eu-west-1", "endpoint_url": server.endpoint},
        }
        os.environ.update(
            AIRFLOW_CONN_AWS_DEFAULT=json.dumps(connection),
            FRUITS_BUCKET="bench",
            FRUITS_INPUT_PREFIX="bank",
            FRUITS_INVENTORY_URI=inventory,
            FRUITS_RESULTS_DIR=str(folder / "results"),
            FRUITS_COMPUTE="local",
        )
        config = config_at_run_time()

        def outputs(plan) -> None:
            write_run_outputs(
                client, "bench", plan.layout.output_prefix,
                images=n, classes=CLASSES, k=50, run_id=plan.run_id, mode="full",
            )  # fmt: skip

        return replay_tasks(config, RunParams("full", 50), f"bench-{n}", outputs)


def curve(sizes: list[int], work: Path, opts) -> list[tuple[str, str, str]]:
    tree = Tree.built("this", REPO, work)
    rows, first = [], None
    for n in sizes:
        bank = work / f"bank-{n}"
        print(f"bank of {n} files...", flush=True)
        write_tiny_bank(bank, n - n // 100)
        store = work / f"store-{n}"
        engine = ("--engine", "synthetic", "--feature-store", str(store))
        cold = job(tree, work, bank, f"{n}-cold", opts, *engine)
        write_tiny_bank(bank, n // 100, start=n - n // 100)
        store_before = size_of(store)  # all the cold run wrote there
        warm = job(tree, work, bank, f"{n}-warm", opts, *engine)
        new_vectors = store_rows_added(store)
        store_warm = size_of(store) - store_before
        warm_written = warm["written"] + store_warm
        peaks = airflow_tasks(n, work)
        airflow_peak = max(p.total_mb for p in peaks.values())
        point = {
            "driver": cold["driver_python_peak_mb"],
            "jvm": cold["memory"].peak_jvm,
            "per_image": cold["duration_seconds"] / n,
            "airflow": airflow_peak,
        }
        first = first or point
        rows += [
            (f"{n}: driver Python peak, cold / warm",
             f"{cold['driver_python_peak_mb']:.0f} / {warm['driver_python_peak_mb']:.0f} MiB",
             f"x{point['driver'] / first['driver']:.2f} of the first size"),
            (f"{n}: JVM peak RSS (driver + executors, local)", gib(point["jvm"]),
             f"x{point['jvm'] / first['jvm']:.2f}"),
            (f"{n}: whole job cold, per image", f"{1e6 * point['per_image']:.0f} µs",
             f"x{point['per_image'] / first['per_image']:.2f}; {cold['duration_seconds']:.0f} s"),
            (f"{n}: whole job warm (1% new)", f"{warm['duration_seconds']:.0f} s",
             f"{warm['counts']['features_computed']} computed, "
             f"{warm['counts']['features_reused']} reused"),
            (f"{n}: bytes written per image, cold", f"{(cold['written'] + store_before) / n:.0f} B",
             f"outputs {cold['written'] / n:.0f} B, store {store_before / n:.0f} B"),
            (f"{n}: bytes written per image of the bank, warm", f"{warm_written / n:.0f} B",
             f"outputs {warm['written'] / n:.0f} B, store {store_warm / n:.0f} B"),
            (f"{n}: 1280-d vectors written by the warm run", str(new_vectors),
             f"{n // 100} new images"),
            (f"{n}: Airflow tasks' peak (Python + Arrow)", f"{airflow_peak:.1f} MB",
             ", ".join(f"{t} {p.total_mb:.0f} MB / {p.seconds:.0f} s" for t, p in peaks.items())),
            (f"{n}: stages cold", ", ".join(f"{k} {v['seconds']:.0f} s"
                                            for k, v in cold["stages"].items()), ""),
        ]  # fmt: skip
        shutil.rmtree(bank)
        shutil.rmtree(store)
    return rows


def compare(n: int, baseline: Path, work: Path, opts) -> list[tuple[str, str, str]]:
    bank = work / "bank-real"
    count = prepare_input(opts.source, n, bank)
    print(f"bank of {count} real images from {opts.source}", flush=True)
    trees = [Tree.built("baseline", baseline, work), Tree.built("this", REPO, work)]
    runs = {
        t.name: job(t, work, bank, f"real-{t.name}", opts, "--engine", "onnxruntime") for t in trees
    }
    base, this = runs["baseline"], runs["this"]
    gap = max(
        abs(a - b)
        for a, b in zip(base["explained_variance"], this["explained_variance"], strict=True)
    )
    rows = []
    for name, info in runs.items():
        rows += [
            (f"{count} real images, {name}: feature stage",
             f"{info['stages']['features']['images_per_second']:.1f} images/s",
             f"{info['stages']['features']['seconds']:.0f} s"),
            (f"{count} real images, {name}: whole job", f"{info['duration_seconds']:.0f} s",
             f"spark-submit {info['wall']:.0f} s, peak {gib(info['memory'].peak)}"),
        ]  # fmt: skip

    def rate(info: dict) -> float:
        return info["stages"]["features"]["images_per_second"]

    time_ratio = this["duration_seconds"] / base["duration_seconds"]
    rows += [
        ("this / baseline, whole job time", f"{time_ratio:.2f}", ""),
        ("this / baseline, feature stage rate", f"{rate(this) / rate(base):.2f}", ""),
        ("largest explained-variance gap", f"{gap:.2e}", f"kept {this['variance_kept']:.4f}"),
    ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curve", default=None, help="comma-separated bank sizes")
    parser.add_argument("--compare", type=int, default=None, help="real images to compare")
    parser.add_argument("--baseline", type=Path, default=None, help="checkout to compare with")
    parser.add_argument("--source", type=Path, default=next(p for p in SOURCES if p.exists()))
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    opts = parser.parse_args()
    if opts.compare and not opts.baseline:
        parser.error("--compare needs --baseline")
    work = Path(tempfile.mkdtemp(prefix="fruits-bench-scale-"))
    print(f"work folder {work}, {os.cpu_count()} cores", flush=True)
    rows = []
    if opts.curve:
        rows += curve([int(n) for n in opts.curve.split(",")], work, opts)
    if opts.compare:
        rows += compare(opts.compare, opts.baseline.resolve(), work, opts)
    return finish(rows, work, opts.keep)


if __name__ == "__main__":
    sys.exit(main())
