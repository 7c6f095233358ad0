"""One Airflow stack (scripts/airflow.sh) at a time, on free ports, against the session's
SeaweedFS and moto.

A stack takes ~15-30 s to start and holds ~1.4 GB, so the local-compute stack is shared by the
modules of this package (package scope) and the EMR stack lives for its module only. Modules
run in name order: test_emr.py stops its stack before test_rest.py starts the shared one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airflow.conftest import BUCKET, INPUT_PREFIX, aws_connection
from tests.airflow.scheduler.stack import AirflowStack, stack_environment


def deployment(tmp: Path, s3_endpoint: str, emr_endpoint: str, **settings: str) -> dict[str, str]:
    """The settings of a test deployment: S3 on SeaweedFS, EMR on moto, outputs of its own."""
    return {
        # The task processes and the triggerer reach S3 and EMR through this connection.
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(s3_endpoint, emr_endpoint),
        "FRUITS_BUCKET": BUCKET,
        "FRUITS_INPUT_PREFIX": INPUT_PREFIX,
        "FRUITS_OUTPUT_PREFIX": f"runs/{tmp.name}",
        "FRUITS_RESULTS_DIR": str(tmp / "results"),
        "FRUITS_STEP_POLL_SECONDS": "1",
        "FRUITS_STEP_TIMEOUT_SECONDS": "300",
        **settings,
    }


def start_stack(tmp: Path, settings: dict[str, str]) -> Iterator[AirflowStack]:
    stack = AirflowStack.start(stack_environment(tmp / "var", settings))
    try:
        yield stack
    finally:
        print(stack.stop())


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory, s3_server, moto_server) -> Iterator[AirflowStack]:
    """The stack with FRUITS_COMPUTE=local: the Spark job runs in the scheduler's task processes."""
    tmp = tmp_path_factory.mktemp("local-stack")
    settings = deployment(tmp, s3_server.endpoint, moto_server, FRUITS_COMPUTE="local")
    yield from start_stack(tmp, settings)


@pytest.fixture(scope="module")
def emr_stack(tmp_path_factory, s3_server, moto_server) -> Iterator[AirflowStack]:
    """The stack with FRUITS_COMPUTE=emr and the deferrable step sensor (the triggerer waits)."""
    tmp = tmp_path_factory.mktemp("emr-stack")
    settings = deployment(
        tmp,
        s3_server.endpoint,
        moto_server,
        FRUITS_COMPUTE="emr",
        FRUITS_SENSOR_DEFERRABLE="true",
    )
    yield from start_stack(tmp, settings)
