"""Native BLAS/LAPACK for Spark MLlib when the machine has OpenBLAS.

MLlib's pure-Java LAPACK fallback gave wrong PCA results on Java 17 here (see
spark/fruits_job/pca.py); OpenBLAS is also ~2.5x faster for the PCA fit.
"""

from __future__ import annotations

from pathlib import Path

# Debian/Ubuntu (libopenblas0-pthread) and Amazon Linux / Fedora (openblas).
CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib64/libopenblasp.so.0",
    "/usr/lib64/libopenblas.so.0",
)


def find_openblas() -> str | None:
    return next((path for path in CANDIDATES if Path(path).is_file()), None)


def java_options(library: str | None) -> str:
    """JVM options pointing MLlib's netlib at a native library (empty without one)."""
    if not library:
        return ""
    return (
        f"-Ddev.ludovic.netlib.blas.nativeLibPath={library} "
        f"-Ddev.ludovic.netlib.lapack.nativeLibPath={library}"
    )


def spark_submit_args() -> list[str]:
    """``--conf`` arguments for spark-submit (local mode: the driver runs everything)."""
    options = java_options(find_openblas())
    return ["--conf", f"spark.driver.extraJavaOptions={options}"] if options else []
