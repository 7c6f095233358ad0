"""Benchmark the job against the reference pattern, on the same images, in one invocation.

    .venv/bin/python bench/benchmark.py --images 2000          # every engine + reference baseline
    .venv/bin/python bench/benchmark.py --images 2000 --skip-baseline

Images come from ../shared/data/fruits-360 when it is there (the bigger set),
else from the repo's sample. Prints images/s of the feature stage and of the
whole job, peak memory of the whole process tree (JVM + Python workers), and
the ratio to the baseline. Nothing here is a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "spark"))
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "bench"))
from inputs import prepare_input  # noqa: E402

from fruits_features.job_invocation import (  # noqa: E402
    JobInvocation,
    JobRequest,
    find_spark_submit,
    local_spark_env,
    local_submit_options,
)
from fruits_features.job_package import build_job_zip  # noqa: E402

WEIGHTS = REPO / "models" / "mobilenet_v2_1.0_224_no_top.weights.h5"
SOURCES = [REPO.parent / "shared" / "data" / "fruits-360", REPO / "sample_data" / "fruits-360"]


class PeakMemory(threading.Thread):
    """Peak summed RSS of a process and all its descendants, sampled; and the peaks of the
    driver's Python process (the one running the job's entry point) and of the JVM."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.peak_python_worker = 0
        self.peak_driver_python = 0
        self.peak_jvm = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    total += rss
                    if proc.name() == "java":
                        self.peak_jvm = max(self.peak_jvm, rss)
                    elif "python" in proc.name():
                        if any(a.endswith(".py") and "pyspark" not in a for a in proc.cmdline()):
                            self.peak_driver_python = max(self.peak_driver_python, rss)
                        else:
                            self.peak_python_worker = max(self.peak_python_worker, rss)
                except psutil.NoSuchProcess:
                    continue
            self.peak = max(self.peak, total)


def spark_submit(command: list[str], log: Path) -> tuple[float, PeakMemory, int]:
    """Run a spark-submit command line; wall time, peak memory of its process tree, exit code."""
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=local_spark_env()
        )
        memory = PeakMemory(proc.pid)
        memory.start()
        code = proc.wait()
    memory.done.set()
    memory.join()
    return time.perf_counter() - start, memory, code


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def print_rows(rows: list[tuple[str, str, str]]) -> None:
    """The results as an aligned table: label, value, detail."""
    width = max(len(r[0]) for r in rows)
    print()
    for label, value, extra in rows:
        print(f"{label:<{width}}  {value:>16}  {extra}")


def finish(rows: list[tuple[str, str, str]], work: Path, keep: bool) -> int:
    """Print the results; remove the work folder unless asked to keep it. The exit code."""
    print_rows(rows)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--source", type=Path, default=next(p for p in SOURCES if p.exists()))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the job's")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument(
        "--engines",
        default="onnxruntime,tensorflow,openvino",
        help="comma-separated engines to run, each on the same images",
    )
    parser.add_argument("--conf", action="append", default=[], help="extra spark conf k=v")
    parser.add_argument(
        "--baseline-images",
        type=int,
        default=None,
        help="run the (slow) baseline on this many of the images; default all",
    )
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    opts = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fruits-bench-"))
    n = prepare_input(opts.source, opts.images, work / "input")
    print(
        f"benchmark: {n} images from {opts.source}, {opts.image_size} px, {opts.master}, "
        f"{os.cpu_count()} cores; work folder {work}",
        flush=True,
    )

    confs = dict(kv.split("=", 1) for kv in opts.conf)
    job_zip = build_job_zip(REPO, work)
    rows: list[tuple[str, str, str]] = []
    rates: dict[str, float] = {}
    for engine in opts.engines.split(","):
        print(f"job: engine {engine}...", flush=True)
        output = work / f"output-{engine}"
        invocation = JobInvocation(
            entry_point=str(REPO / "spark" / "process_fruits_data.py"),
            job_zip=str(job_zip),
            request=JobRequest(
                input_uri=str(work / "input"),
                output_uri=str(output),
                weights_uri=str(WEIGHTS),
                mode="full",
                pca_components=50,
                run_id=f"benchmark-{engine}",
                engine=engine,
                partitions=opts.partitions,
                image_size=opts.image_size,
                batch_size=opts.batch_size,
            ),
            spark_conf=confs,
        )
        command = invocation.spark_submit(
            executable=str(find_spark_submit()), options=local_submit_options(opts.master)
        )
        wall, memory, code = spark_submit(command, work / f"job-{engine}.log")
        if code != 0:
            print(f"job failed (exit {code}); see {work / f'job-{engine}.log'}")
            return 1
        info = json.loads((output / "model_info" / "model_info.json").read_text())
        stages = info["stages"]
        rates[engine] = stages["features"]["images_per_second"]
        rows += [
            (f"{engine}: feature stage", f"{rates[engine]:.1f} images/s",
             f"{stages['features']['seconds']:.1f} s"),
            (f"{engine}: whole run (in Spark)", f"{n / info['duration_seconds']:.1f} images/s",
             f"{info['duration_seconds']:.1f} s"),
            (f"{engine}: whole spark-submit", f"{n / wall:.1f} images/s", f"{wall:.1f} s"),
            (f"{engine}: peak memory, all processes", gib(memory.peak), ""),
            (f"{engine}: peak memory, one Python worker", gib(memory.peak_python_worker), ""),
            (f"{engine}: variance kept by 50 PCs", f"{100 * info['variance_kept']:.1f}%", ""),
            (f"{engine}: stages", ", ".join(f"{k} {v['seconds']:.1f} s"
                                            for k, v in stages.items()), ""),
        ]  # fmt: skip
    if "tensorflow" in rates:
        for engine, rate in rates.items():
            if engine != "tensorflow":
                rows.append((f"ratio: {engine} / tensorflow, feature stage",
                             f"{rate / rates['tensorflow']:.2f}x", ""))  # fmt: skip

    if not opts.skip_baseline:
        base_input = work / "input"
        if opts.baseline_images and opts.baseline_images < n:
            base_input = work / "baseline-input"
            prepare_input(work / "input", opts.baseline_images, base_input)
        print(
            "baseline: reference pattern (model rebuilt per Arrow batch, predict per image)...",
            flush=True,
        )
        result = work / "baseline.json"
        command = [
            str(find_spark_submit()),
            *local_submit_options(opts.master),
            *(arg for key, value in confs.items() for arg in ("--conf", f"{key}={value}")),
            str(REPO / "bench" / "reference_pattern.py"),
            *(str(base_input), str(WEIGHTS), str(opts.image_size), str(result)),
        ]
        _, base_memory, code = spark_submit(command, work / "baseline.log")
        if code != 0:
            print(f"baseline failed (exit {code}); see {work / 'baseline.log'}")
            return 1
        base = json.loads(result.read_text())
        base_rate = base["images"] / base["seconds"]
        rows += [
            (
                f"baseline: feature stage ({base['images']} images)",
                f"{base_rate:.1f} images/s",
                f"{base['seconds']:.1f} s",
            ),
            ("baseline: peak memory, all processes", gib(base_memory.peak), ""),
        ]
        rows += [
            (f"ratio: {engine} / baseline, feature stage", f"{rate / base_rate:.1f}x", "")
            for engine, rate in rates.items()
        ]

    return finish(rows, work, opts.keep)


if __name__ == "__main__":
    sys.exit(main())
