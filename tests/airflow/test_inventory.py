"""The bank's listing from an S3 Inventory report (FRUITS_INVENTORY_URI): check_inputs and
the job read the report, never list the bank, and agree on what it holds.

The report here is made from the bank's own listing, then the bank changes as it does in
the day between a report and a run: an object deleted after the report is an image the
job cannot read (an error, named), and one added after it waits for the next report.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from fruits_contract import outputs
from tests.airflow.conftest import BUCKET
from tests.airflow.scale import write_inventory
from tests.conftest import WEIGHTS, spark_submit_job
from tests.spark.images import sample_images

pytestmark = [pytest.mark.slow, pytest.mark.long]


def test_the_job_and_check_inputs_read_the_bank_from_its_inventory(
    monkeypatch, s3_server, tmp_path
):
    from fruits_contract.job_request import JobRequest
    from fruits_features.input_check import check_run_inputs
    from fruits_features.run_params import RunParams
    from fruits_features.s3_layout import RunLayout

    client = s3_server.client()
    bank = f"inventoried/{tmp_path.name}/fruits-360"
    for label in ("Apple Braeburn", "Banana"):
        for path in sample_images(label, 5):
            client.upload_file(str(path), BUCKET, f"{bank}/Training/{label}/{path.name}")
    client.put_object(Bucket=BUCKET, Key=f"{bank}/Training/Banana/notes.txt", Body=b"x")
    client.put_object(Bucket=BUCKET, Key=f"{bank}/Training/Banana/gone.jpg", Body=b"x")
    listed = [
        (o["Key"], o["Size"], int(o["LastModified"].timestamp() * 1000))
        for o in client.list_objects_v2(Bucket=BUCKET, Prefix=f"{bank}/")["Contents"]
    ]
    inventory = write_inventory(
        client, BUCKET, f"inventory/{tmp_path.name}", iter(listed), rows_per_group=8
    )
    # The day after the report: one object deleted, one added.
    client.delete_object(Bucket=BUCKET, Key=f"{bank}/Training/Banana/gone.jpg")
    late = sample_images("Banana", 6)[5]
    client.upload_file(str(late), BUCKET, f"{bank}/Training/Banana/{late.name}")

    layout = RunLayout(BUCKET, "full", "r", bank, f"runs/{tmp_path.name}/", "a/", "store")
    checked = check_run_inputs(s3_server.hook(), layout, RunParams("full", 3), inventory)
    assert checked.inventory == f"{inventory}/2026-12-06T01-00Z/manifest.json"
    assert (checked.planned_images, checked.skipped) == (11, 1)

    for name, value in s3_server.access().environment().items():
        monkeypatch.setenv(name, value)
    output = f"s3://{BUCKET}/runs/{tmp_path.name}/job"
    request = JobRequest(
        input_uri=f"s3://{BUCKET}/{bank}",
        output_uri=output,
        weights_uri=str(WEIGHTS),
        mode="full",
        pca_components=3,
        run_id="inventoried",
        engine="synthetic",
        inventory=checked.inventory,
    )
    done = spark_submit_job(request, tmp_path / "zip", conf=s3_server.access().spark_conf())
    assert done.returncode == 0, done.stdout[-5000:]

    run = tmp_path / "run"
    prefix = f"runs/{tmp_path.name}/job/"
    for key in s3_server.keys(prefix):
        target = run / key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(BUCKET, key, str(target))
    info = json.loads((run / outputs.MODEL_INFO).read_text())
    counts = info["counts"]
    # What check_inputs planned from the same report.
    assert (counts["images_selected"], counts["skipped_files"]) == (11, 1)
    assert counts["files_listed"] == len(listed)
    listing = pq.read_table(run / outputs.LISTING / outputs.PARQUET).to_pydict()
    assert sorted(listing["path"]) == sorted(f"s3://{BUCKET}/{key}" for key, _, _ in listed)
    assert sorted(zip(listing["bytes"], listing["modified"], strict=True)) == sorted(
        (size, modified) for _, size, modified in listed
    )
    errors = pq.read_table(run / outputs.ERRORS / outputs.PARQUET).to_pylist()
    assert [(e["path"].rsplit("/", 1)[1], e["reason"][:22]) for e in errors] == [
        ("gone.jpg", "cannot read the file: ")
    ]
    metadata = pq.read_table(run / outputs.METADATA / outputs.PARQUET).to_pydict()
    assert f"Banana/{late.name}" not in {path.split("/Training/")[1] for path in metadata["path"]}
