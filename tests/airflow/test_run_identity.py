"""No change, no cluster: what makes two runs the same, on the project's real files."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from fruits_features.plan import build_plan
from fruits_features.run_identity import (
    last_success_record,
    listing_digest,
    parse_record,
    run_identity,
    unchanged_since,
)
from fruits_features.run_params import RunParams
from fruits_features.settings import build_config

REPO = Path(__file__).resolve().parents[2]
LISTING = [
    {"Key": "in/Training/Apple Red 1/0_100.jpg", "Size": 4869, "ETag": '"a1"'},
    {"Key": "in/Training/Apple Red 1/1_100.jpg", "Size": 4901, "ETag": '"b2"'},
    {"Key": "in/Training/Banana/0_100.jpg", "Size": 3500, "ETag": '"c3"'},
]
PARAMS = RunParams(mode="mini", pca_components=50)
DIGEST = listing_digest(LISTING)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of what a run ships (job, bootstrap, weights), to change one file at a time."""
    root = tmp_path_factory.mktemp("project")
    for folder in ("spark", "bootstrap", "models", "plugins/fruits_contract"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_listing_digest_ignores_order_and_sees_every_change():
    base = listing_digest(LISTING)
    assert listing_digest(list(reversed(LISTING))) == base
    for change in ({"Size": 4870}, {"ETag": '"zz"'}, {"Key": "in/Training/Apple Red 1/9.jpg"}):
        changed = [dict(LISTING[0], **change), *LISTING[1:]]
        assert listing_digest(changed) != base, change
    assert listing_digest(LISTING[:2]) != base  # a deleted image
    assert listing_digest([*LISTING, {**LISTING[0], "Key": "in/x.jpg"}]) != base  # an added one


def test_identity_follows_the_outputs_params_not_how_they_are_computed(project):
    base = run_identity(DIGEST, PARAMS, project)
    for params in (
        RunParams(mode="apples", pca_components=50),
        RunParams(mode="mini", pca_components=20),
        RunParams(mode="mini", pca_components=50, limit=100),
        RunParams(mode="mini", pca_components=50, engine="tensorflow"),
        RunParams(mode="mini", pca_components=50, export_features="never"),
    ):
        assert run_identity(DIGEST, params, project) != base, params
    # Reuse and force change whether a run happens, not what it would write.
    assert run_identity(DIGEST, RunParams("mini", 50, reuse_features=False), project) == base
    assert run_identity(DIGEST, RunParams("mini", 50, force=True), project) == base


@pytest.mark.parametrize(
    "shipped",
    [
        "spark/fruits_job/pca.py",
        "plugins/fruits_contract/outputs.py",
        "spark/process_fruits_data.py",
        "bootstrap/install_dependencies.sh",
        "bootstrap/requirements-emr-worker-onnxruntime.txt",
        "models/mobilenet_v2_1.0_224_no_top.weights.h5",
    ],
)
def test_a_change_to_anything_shipped_changes_the_identity(project, shipped):
    path = project / shipped
    assert path.is_file(), shipped
    before = run_identity(DIGEST, PARAMS, project)
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n")
        assert (
            run_identity(DIGEST, PARAMS, project)["artifacts_sha256"]
            != (before["artifacts_sha256"])
        )
    finally:
        path.write_bytes(original)
    assert run_identity(DIGEST, PARAMS, project) == before


def test_a_run_is_skipped_only_on_a_readable_record_of_the_same_identity(project):
    identity = run_identity(DIGEST, PARAMS, project)
    plan = build_plan(build_config({}), PARAMS, "scheduled__2026-12-01", 300, identity=identity)
    record = last_success_record(plan)
    text = json.dumps(record)
    assert unchanged_since(identity, parse_record(text)) == record
    other = run_identity(listing_digest(LISTING[:2]), PARAMS, project)
    assert unchanged_since(other, parse_record(text)) is None
    # No record, or one that cannot be read: run (never skip on doubt).
    assert unchanged_since(identity, None) is None
    for garbage in ("", "{", "[1, 2]", '"text"', text[: len(text) // 2]):
        assert unchanged_since(identity, parse_record(garbage)) is None, garbage


def test_a_skip_needs_the_last_successs_outputs_where_its_record_says(
    pipeline_env, s3_server, caplog
):
    """Outputs deleted by hand or expired by a lifecycle rule: the next unchanged night runs
    again (and says why) instead of pointing at outputs that are gone, night after night."""
    from airflow.sdk.exceptions import AirflowSkipException

    from fruits_features.run_identity import record_success
    from fruits_features.settings import config_at_run_time
    from fruits_features.tasks import plan_run, s3_of
    from tests.airflow.conftest import BUCKET

    config, params = config_at_run_time(), RunParams(mode="mini", pca_components=5)
    first = plan_run(config, params, "scheduled__2026-12-01T01:00:00+00:00")
    client = s3_server.client()
    for part in ("pca/parquet/part-0.parquet", "model_info/model_info.json", "_SUCCESS"):
        client.put_object(Bucket=BUCKET, Key=first.layout.output_prefix + part, Body=b"x")
    record_success(s3_of(first), first)

    with pytest.raises(
        AirflowSkipException, match="Nothing changed since run scheduled__2026-12-01"
    ):
        plan_run(config, params, "scheduled__2026-12-02T01:00:00+00:00")

    client.delete_object(
        Bucket=BUCKET, Key=first.layout.output_prefix + "pca/parquet/part-0.parquet"
    )
    with caplog.at_level("WARNING"):
        again = plan_run(config, params, "scheduled__2026-12-03T01:00:00+00:00")
    assert again.identity == first.identity
    assert f"its outputs at {first.layout.output_uri}/ are no longer complete" in caplog.text
    # A record written before it held the outputs' digest: run (never skip on doubt).
    earlier = {"identity": dict(first.identity), "run_id": first.run_id, "output_uri": None}
    client.put_object(
        Bucket=BUCKET, Key=first.layout.last_success_key, Body=json.dumps(earlier).encode()
    )
    assert plan_run(config, params, "scheduled__2026-12-04T01:00:00+00:00").identity


def test_two_deployments_sharing_a_bucket_never_write_into_one_run_prefix(
    pipeline_env, s3_server, monkeypatch
):
    """Same schedule, same run id, same bucket and output prefix: both would pass the
    empty-prefix check at 01:00 and write into one folder. The first claims the prefix (a
    conditional write); the other is refused before anything starts, naming the owner. The
    same run again (a retried or cleared check_inputs) keeps its claim."""
    from fruits_features.input_check import InputCheckError
    from fruits_features.settings import config_at_run_time
    from fruits_features.tasks import plan_run

    params, run_id = (
        RunParams(mode="mini", pca_components=5),
        "scheduled__2026-12-07T01:00:00+00:00",
    )
    monkeypatch.setenv("FRUITS_DEPLOYMENT", "prod")
    prod = plan_run(config_at_run_time(), params, run_id)
    monkeypatch.setenv("FRUITS_DEPLOYMENT", "staging")
    refused = re.escape(f"claimed by run {run_id} of deployment prod")
    with pytest.raises(InputCheckError, match=refused):
        plan_run(config_at_run_time(), params, run_id)
    monkeypatch.setenv("FRUITS_DEPLOYMENT", "prod")
    again = plan_run(config_at_run_time(), params, run_id)
    assert again.layout.output_uri == prod.layout.output_uri
