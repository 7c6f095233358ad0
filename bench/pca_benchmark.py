"""Benchmark the PCA stage: the job's PCA against MLlib's own fit, with and without native BLAS.

    .venv/bin/python bench/pca_benchmark.py                       # 19,136 and 57,950 images
    .venv/bin/python bench/pca_benchmark.py --sizes 2000

For each size, in one invocation: the features of N real images (the job, ONNX Runtime,
computed once and kept under var/bench/), then the PCA stage (fit, projection, Parquet + CSV
writes) by each method, each in its own spark-submit: netlib's pure-Java BLAS/LAPACK, and
native OpenBLAS when the machine has it. Prints seconds, peak memory, the LAPACK netlib used,
and how far each method's explained variance is from numpy's PCA of the same features.
Nothing here is a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "spark"), str(REPO / "plugins"), str(REPO / "bench")]
from benchmark import gib, spark_submit  # noqa: E402
from inputs import prepare_input  # noqa: E402

from fruits_features.job_invocation import (  # noqa: E402
    JobInvocation,
    JobRequest,
    find_spark_submit,
    local_submit_options,
)
from fruits_features.job_package import build_job_zip  # noqa: E402

WEIGHTS = REPO / "models" / "mobilenet_v2_1.0_224_no_top.weights.h5"
SHARED = REPO.parent / "shared" / "data" / "fruits-360"
# Debian's libopenblas0-pthread; what MLlib's netlib loads when pointed at it.
OPENBLAS = Path(f"/usr/lib/{platform.machine()}-linux-gnu/openblas-pthread/libopenblas.so.0")
MISSING = "/nonexistent/libopenblas.so.0"


def netlib_options(library: str) -> str:
    return (
        f"-Ddev.ludovic.netlib.blas.nativeLibPath={library} "
        f"-Ddev.ludovic.netlib.lapack.nativeLibPath={library}"
    )


def features_of(count: int, work: Path, job_zip: Path) -> Path:
    """Features of ``count`` images, computed by the job once and kept."""
    output = work / f"features-{count}"
    if (output / "_SUCCESS").is_file():
        return output / "features" / "parquet"
    images = prepare_input(SHARED, count, work / f"input-{count}")
    print(f"features of {images} images (the job, onnxruntime)...", flush=True)
    invocation = JobInvocation(
        entry_point=str(REPO / "spark" / "process_fruits_data.py"),
        job_zip=str(job_zip),
        request=JobRequest(
            input_uri=str(work / f"input-{count}"),
            output_uri=str(output),
            weights_uri=str(WEIGHTS),
            mode="full",
            pca_components=50,
            run_id=f"pca-bench-{count}",
        ),
    )
    command = invocation.spark_submit(
        executable=str(find_spark_submit()), options=local_submit_options(driver_memory="4g")
    )
    seconds, _, code = spark_submit(command, work / f"features-{count}.log")
    if code != 0:
        raise SystemExit(f"feature run failed; see {work / f'features-{count}.log'}")
    print(f"  {seconds:.0f} s", flush=True)
    return output / "features" / "parquet"


def numpy_explained(features: Path, k: int) -> np.ndarray:
    """The reference: numpy's PCA (eigenvalues of the covariance) of the same features."""
    table = pq.read_table(features, columns=["features"])
    column = table.column("features").combine_chunks()
    matrix = column.flatten().to_numpy().reshape(len(column), -1).astype(np.float64)
    eigenvalues = np.linalg.eigvalsh(np.cov(matrix, rowvar=False))[::-1]
    return np.clip(eigenvalues, 0, None)[:k] / np.clip(eigenvalues, 0, None).sum()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="19136,57950", help="comma-separated image counts")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench")
    opts = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: the PCA benchmark needs the shared image set")
    opts.work.mkdir(parents=True, exist_ok=True)
    job_zip = build_job_zip(REPO, opts.work)
    blas_modes = {"java": MISSING}
    if OPENBLAS.is_file():
        blas_modes["native"] = str(OPENBLAS)
    else:
        print(f"{OPENBLAS} not installed: native BLAS rows skipped", flush=True)

    rows = []
    for count in (int(size) for size in opts.sizes.split(",")):
        features = features_of(count, opts.work, job_zip)
        reference = numpy_explained(features, opts.k)
        for method in ("mllib", "job"):
            for blas, library in blas_modes.items():
                label = f"{count} images, {method}, {blas}"
                print(f"PCA: {label}...", flush=True)
                stamp = f"{count}-{method}-{blas}-{time.time_ns()}"
                result = opts.work / f"pca-{stamp}.json"
                options = netlib_options(library)
                command = [
                    str(find_spark_submit()),
                    *local_submit_options(driver_memory="4g"),
                    *("--conf", f"spark.driver.extraJavaOptions={options}"),
                    *("--py-files", str(job_zip)),
                    str(REPO / "bench" / "pca_fit.py"),
                    *(str(features), str(opts.work / f"pca-out-{stamp}"), method, str(opts.k)),
                    str(result),
                ]
                _, memory, code = spark_submit(command, opts.work / f"pca-{stamp}.log")
                if code != 0:
                    print(f"  failed (exit {code}); see {opts.work / f'pca-{stamp}.log'}")
                    continue
                info = json.loads(result.read_text())
                gap = (
                    float(np.abs(np.array(info["explained"]) - reference).max())
                    if info["consistent"]
                    else float("nan")
                )
                rows.append(
                    (
                        label,
                        info["lapack"].rsplit(".", 1)[-1],
                        f"{info['fit_seconds']:.1f}",
                        f"{info['total_seconds']:.1f}",
                        gib(memory.peak),
                        f"{sum(info['explained']):.4f}" if info["consistent"] else "inconsistent",
                        f"{gap:.1e}",
                    )
                )
    head = ("run", "LAPACK", "fit s", "fit+write s", "peak memory", "kept", "max |Δ| vs numpy")
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    print()
    for row in (head, *rows):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
