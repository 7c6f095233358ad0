"""The Airflow tasks on a bank of a million objects and a run of a million images: their
memory is bounded by the classes and the summary's sample, never by the number of images.

The bank's listing is an S3 Inventory report (Parquet, on SeaweedFS), as FRUITS_INVENTORY_URI
configures it; the run's outputs are laid out as the job writes them. Each task's work is
replayed as the task runs it (fruits_features.tasks), its peak memory measured: Python's
heap (tracemalloc) and Arrow's buffers.
"""

from __future__ import annotations

import pytest

from tests.airflow.conftest import BUCKET, aws_connection
from tests.airflow.scale import (
    bank_keys,
    replay_tasks,
    synthetic_objects,
    write_inventory,
    write_run_outputs,
)

pytestmark = [pytest.mark.slow, pytest.mark.long]

IMAGES, CLASSES, K = 1_000_000, 200, 50
LIMIT_MB = 250


def test_the_tasks_stay_small_on_a_million_objects(monkeypatch, s3_server, tmp_path):
    from fruits_features.run_params import RunParams
    from fruits_features.settings import config_at_run_time

    client = s3_server.client()
    bank = f"scale/{tmp_path.name}/fruits-360"
    objects = synthetic_objects(bank_keys(bank, IMAGES, CLASSES))
    inventory = write_inventory(client, BUCKET, f"inventory/{tmp_path.name}", objects)
    environment = {
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(s3_server.endpoint, "http://127.0.0.1:9"),
        "FRUITS_BUCKET": BUCKET,
        "FRUITS_INPUT_PREFIX": bank,
        "FRUITS_INVENTORY_URI": inventory,
        "FRUITS_OUTPUT_PREFIX": f"runs/{tmp_path.name}",
        "FRUITS_FEATURE_STORE_PREFIX": f"stores/{tmp_path.name}",
        "FRUITS_RESULTS_DIR": str(tmp_path / "results"),
        "FRUITS_COMPUTE": "local",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    config = config_at_run_time()

    def job(plan) -> None:
        layout = plan.layout
        write_run_outputs(
            client, BUCKET, layout.output_prefix,
            images=IMAGES, classes=CLASSES, k=K, run_id=plan.run_id, mode="full",
        )  # fmt: skip

    peaks = replay_tasks(config, RunParams("full", K), "manual__scale", job)

    for task, peak in peaks.items():
        print(f"{task}: {peak.total_mb:.1f} MB ({peak.python / 2**20:.1f} Python, "
              f"{peak.arrow / 2**20:.1f} Arrow) in {peak.seconds:.1f} s")  # fmt: skip
    assert {task: peak.total_mb <= LIMIT_MB for task, peak in peaks.items()} == dict.fromkeys(
        peaks, True
    ), peaks
