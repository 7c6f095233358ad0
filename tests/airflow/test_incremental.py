"""Nightly runs through the DAG: an unchanged bank starts nothing, a changed one reuses the
features of the images it already saw (local compute and EMR on moto, S3 on SeaweedFS)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fruits_features.s3_layout import run_key
from tests.airflow.conftest import BUCKET, QUIET_TEST_CLIENT, emr_clusters
from tests.spark.images import sample_images

pytestmark = [
    pytest.mark.slow,
    pytest.mark.long,
    pytest.mark.usefixtures("airflow_db"),
    QUIET_TEST_CLIENT,
]

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "fruits_features_dag.py"
CONF = {"mode": "mini", "pca_components": 3}
CLASSES = ("Apple Braeburn", "Apple Red 1", "Apple Golden 1")


def load_dag(monkeypatch, compute: str):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FRUITS_COMPUTE", compute)
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags["fruits_features"]


def states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def asset_events(run_id: str) -> list:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run_id)).all()


@pytest.fixture
def own_bank(monkeypatch, pipeline_env, s3_server, tmp_path) -> str:
    """A bank of 12 real Apple photos of this test's own (others' banks stay as they are)."""
    prefix = f"banks/{tmp_path.name}"
    client = s3_server.client()
    for label in CLASSES:
        for path in sample_images(label, 4):
            client.upload_file(str(path), BUCKET, f"{prefix}/Training/{label}/{path.name}")
    monkeypatch.setenv("FRUITS_INPUT_PREFIX", prefix)
    pipeline_env["FRUITS_INPUT_PREFIX"] = prefix
    return prefix


def add_photo(s3_server, prefix: str) -> str:
    path = sample_images(CLASSES[0], 5)[4]
    key = f"{prefix}/Training/{CLASSES[0]}/{path.name}"
    s3_server.client().upload_file(str(path), BUCKET, key)
    return f"s3://{BUCKET}/{key}"


def age_the_maintenance_record(s3_server, pipeline_env, days: int) -> dict:
    """Make the store's last maintenance (or its creation) ``days`` old: the next run's is due."""
    key = f"{pipeline_env['FRUITS_FEATURE_STORE_PREFIX']}/maintenance.json"
    client = s3_server.client()
    record = json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    then = datetime.fromisoformat(record["finished_at"]) - timedelta(days=days)
    record["finished_at"] = then.isoformat()
    client.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(record).encode())
    return record


def maintenance_record(s3_server, pipeline_env) -> dict:
    key = f"{pipeline_env['FRUITS_FEATURE_STORE_PREFIX']}/maintenance.json"
    return json.loads(s3_server.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())


def model_info(pipeline_env, run) -> dict:
    folder = Path(pipeline_env["FRUITS_RESULTS_DIR"]) / "mini" / run_key(run.run_id)
    return json.loads((folder / "model_info" / "model_info.json").read_text())


def assert_skipped_before_anything(run, capfd, first) -> None:
    got = states(run)
    assert str(run.state) == "success", got
    assert got.pop("check_inputs") == "skipped"
    # Nothing uploaded, started or published; with no plan, the EMR sweep is skipped too.
    assert set(got.values()) == {"skipped"}, got
    assert asset_events(run.run_id) == []
    log = capfd.readouterr().out
    assert f"Nothing changed since run {first.run_id}" in log
    assert "Trigger with force: true to run anyway" in log


def test_local_nightly_runs_skip_an_unchanged_bank_and_reuse_features(
    monkeypatch, pipeline_env, own_bank, s3_server, capfd
):
    # The worker's disk: a summary download (the data sets checked on S3), one run kept.
    monkeypatch.setenv("FRUITS_DOWNLOAD", "summary")
    monkeypatch.setenv("FRUITS_RESULTS_KEEP", "1")
    dag = load_dag(monkeypatch, "local")
    first = dag.test(run_conf=CONF)
    assert str(first.state) == "success", states(first)
    counts = model_info(pipeline_env, first)["counts"]
    assert (counts["features_computed"], counts["features_reused"]) == (12, 0)
    # A new store: its table was created by this run, its first maintenance is a week away.
    assert states(first)["maintain_feature_store"] == "skipped"
    assert maintenance_record(s3_server, pipeline_env)["run_id"] == first.run_id
    runs_on_s3 = s3_server.keys(f"{pipeline_env['FRUITS_OUTPUT_PREFIX']}/mini/")
    capfd.readouterr()

    unchanged = dag.test(run_conf=CONF)

    assert_skipped_before_anything(unchanged, capfd, first)
    assert s3_server.keys(f"{pipeline_env['FRUITS_OUTPUT_PREFIX']}/mini/") == runs_on_s3

    new_photo = add_photo(s3_server, own_bank)
    age_the_maintenance_record(s3_server, pipeline_env, days=8)
    changed = dag.test(run_conf=CONF)

    assert str(changed.state) == "success", states(changed)
    assert states(changed)["maintain_feature_store"] == "success"
    log = capfd.readouterr().out
    assert "Feature store maintenance due" in log
    # The merges of both runs (files of their own each), compacted into one file.
    before = re.search(r"feature table before: version 2, (\d+) files", log)
    assert before and int(before.group(1)) >= 2, log[-3000:]
    assert "feature table after OPTIMIZE: version 3, 1 files" in log
    record = maintenance_record(s3_server, pipeline_env)
    assert (record["run_id"], record["after"]["files"]) == (changed.run_id, 1)
    info = model_info(pipeline_env, changed)
    counts = info["counts"]
    assert (counts["features_computed"], counts["features_reused"]) == (1, 12)
    results = Path(pipeline_env["FRUITS_RESULTS_DIR"]) / "mini"
    # Only the last run kept locally, its summary only (the data sets are on S3, checked
    # there).
    assert [p.name for p in results.iterdir()] == [run_key(changed.run_id)]
    copy = results / run_key(changed.run_id)
    assert not (copy / "features").exists() and not (copy / "pca").exists()
    on_s3 = s3_server.keys(f"{pipeline_env['FRUITS_OUTPUT_PREFIX']}/mini/")
    assert any(k.endswith(".parquet") and "/features/" in k for k in on_s3)
    pca = pq.read_table(copy / "summary" / "pca_sample").to_pandas()
    assert new_photo in set(pca.path) and len(pca) == 13
    assert len(asset_events(changed.run_id)) == 1


def test_emr_nightly_runs_start_no_cluster_for_an_unchanged_bank(
    monkeypatch, pipeline_env, own_bank, emr_steps, s3_server, capfd
):
    from tests.airflow.aws_calls import record_aws_calls

    driver = emr_steps("RUN")
    dag = load_dag(monkeypatch, "emr")
    before = {c.id for c in emr_clusters()}
    first = dag.test(run_conf=CONF)
    assert str(first.state) == "success", states(first)
    assert len(emr_clusters()) == len(before) + 1
    # The features went to the store's Delta table on S3, committed.
    store = s3_server.keys(pipeline_env["FRUITS_FEATURE_STORE_PREFIX"] + "/features/_delta_log/")
    assert any(k.endswith(".json") for k in store)
    capfd.readouterr()

    with record_aws_calls() as calls:
        unchanged = dag.test(run_conf=CONF)

    assert_skipped_before_anything(unchanged, capfd, first)
    assert len(emr_clusters()) == len(before) + 1
    assert not [c for c in calls.calls if c.service == "emr" and c.operation == "RunJobFlow"]

    add_photo(s3_server, own_bank)
    age_the_maintenance_record(s3_server, pipeline_env, days=8)
    changed = dag.test(run_conf=CONF)

    assert str(changed.state) == "success", states(changed)
    assert len(emr_clusters()) == len(before) + 2
    counts = model_info(pipeline_env, changed)["counts"]
    # The step read the store on S3: only the new photo was computed.
    assert (counts["features_computed"], counts["features_reused"]) == (1, 12)
    assert all(run.code == 0 for run in driver.runs.values())
    # The maintenance was due: the cluster's second step, watched, recorded on S3.
    (cluster,) = [c for c in emr_clusters() if c.id not in before and c.steps[0].id in driver.runs
                  and run_key(changed.run_id) in c.name]  # fmt: skip
    assert [s.name.split()[1] for s in cluster.steps] == ["mini", "maintenance"]
    assert states(changed)["watch_maintenance"] == "success"
    record = maintenance_record(s3_server, pipeline_env)
    assert (record["run_id"], record["after"]["files"]) == (changed.run_id, 1)
