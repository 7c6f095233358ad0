"""Paths shared by every test package, and the job run as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "fruits-360"
WEIGHTS = REPO / "models" / "mobilenet_v2_1.0_224_no_top.weights.h5"
ENTRY_POINT = REPO / "spark" / "process_fruits_data.py"

# Spark's Python workers must run this interpreter (the venv's), not `python3`
# from PATH.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def spark_submit_job(
    request, work: Path, timeout: float = 900, driver_memory: str = "2g", conf: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the job with spark-submit in local mode, as the local compute backend does:
    the invocation the DAG builds, with the job zip the DAG ships (built into ``work``)."""
    from fruits_features.job_invocation import JobInvocation, local_spark_submit
    from fruits_features.job_package import build_job_zip

    work.mkdir(parents=True, exist_ok=True)
    invocation = JobInvocation(
        entry_point=str(ENTRY_POINT),
        job_zip=str(build_job_zip(REPO, work)),
        request=request,
        spark_conf=conf or {},
    )
    command, env = local_spark_submit(invocation, driver_memory=driver_memory)
    return subprocess.run(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


# System tools some tests need, and the command that installs each (scripts/check_prereqs.sh
# checks them before `make test`). A missing tool fails its tests: a skip would let the suite
# pass on a machine that cannot check what they check.
SYSTEM_TOOLS = {
    "chromium": "apt-get install --no-install-recommends chromium",
    "shellcheck": "apt-get install shellcheck",
    "docker-compose": "apt-get install --no-install-recommends docker-compose",
}


def require_tool(name: str) -> str:
    """The path of a system tool the test needs; fails the test, naming the install command."""
    import shutil

    import pytest

    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: {SYSTEM_TOOLS[name]} (.ci/apt-packages.txt)")
    return path
