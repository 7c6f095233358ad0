"""docker/seed_sample_data.py against moto's in-process S3."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import boto3
import moto
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "fruits-360"


def _load_seed_module():
    spec = importlib.util.spec_from_file_location(
        "seed_sample_data", REPO / "docker" / "seed_sample_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed_module = _load_seed_module()


@pytest.fixture
def s3(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with moto.mock_aws():
        yield boto3.client("s3", region_name="eu-west-1")


def _keys(client, bucket):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_object_key_joins_prefix_and_relative_path():
    relative = Path("Training/Apple Braeburn/0_100.jpg")
    assert seed_module.object_key("input/fruits-360", relative) == (
        "input/fruits-360/Training/Apple Braeburn/0_100.jpg"
    )
    assert seed_module.object_key("/input/", relative) == "input/Training/Apple Braeburn/0_100.jpg"
    assert seed_module.object_key("", relative) == "Training/Apple Braeburn/0_100.jpg"


def test_creates_the_bucket_and_uploads_every_file(s3):
    files = sorted(p.relative_to(SAMPLE).as_posix() for p in SAMPLE.rglob("*") if p.is_file())

    uploaded, skipped = seed_module.seed(s3, "fruits-bucket", "input/fruits-360", SAMPLE)

    assert (uploaded, skipped) == (len(files), 0)
    assert _keys(s3, "fruits-bucket") == {f"input/fruits-360/{f}" for f in files}
    location = s3.get_bucket_location(Bucket="fruits-bucket")["LocationConstraint"]
    assert location == "eu-west-1"


def test_second_run_uploads_nothing(s3):
    seed_module.seed(s3, "fruits-bucket", "input", SAMPLE)

    uploaded, skipped = seed_module.seed(s3, "fruits-bucket", "input", SAMPLE)

    assert uploaded == 0
    assert skipped == sum(1 for p in SAMPLE.rglob("*") if p.is_file())


def test_reuploads_a_file_whose_size_differs(s3, tmp_path):
    source = tmp_path / "fruits-360"
    (source / "Training" / "Apple A").mkdir(parents=True)
    image = source / "Training" / "Apple A" / "1.jpg"
    image.write_bytes(b"first")
    seed_module.seed(s3, "fruits-bucket", "input", source)

    image.write_bytes(b"second version")
    uploaded, skipped = seed_module.seed(s3, "fruits-bucket", "input", source)

    assert (uploaded, skipped) == (1, 0)
    body = s3.get_object(Bucket="fruits-bucket", Key="input/Training/Apple A/1.jpg")["Body"]
    assert body.read() == b"second version"


def test_leaves_an_existing_bucket_and_other_keys_alone(s3, tmp_path):
    s3.create_bucket(
        Bucket="fruits-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_object(Bucket="fruits-bucket", Key="output/run-1/_SUCCESS", Body=b"")
    source = tmp_path / "data"
    source.mkdir()
    (source / "a.jpg").write_bytes(b"x")

    seed_module.seed(s3, "fruits-bucket", "input", source)

    assert _keys(s3, "fruits-bucket") == {"output/run-1/_SUCCESS", "input/a.jpg"}


def test_missing_source_folder_is_an_error(s3, tmp_path):
    with pytest.raises(FileNotFoundError, match="sample data folder not found"):
        seed_module.seed(s3, "fruits-bucket", "input", tmp_path / "absent")


def test_arguments_come_from_the_stack_environment(monkeypatch):
    monkeypatch.setenv("FRUITS_BUCKET", "b")
    monkeypatch.setenv("FRUITS_INPUT_PREFIX", "in/put")
    monkeypatch.delenv("FRUITS_AWS_CONN_ID", raising=False)

    args = seed_module.parse_args([])

    assert (args.bucket, args.prefix, args.conn_id) == ("b", "in/put", "aws_default")


def test_missing_bucket_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("FRUITS_BUCKET", raising=False)
    monkeypatch.setenv("FRUITS_INPUT_PREFIX", "input")
    with pytest.raises(SystemExit) as exit_info:
        seed_module.parse_args([])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("endpoint", "aws"),
    [
        ("https://s3.eu-west-1.amazonaws.com", True),
        ("https://s3.amazonaws.com", True),
        ("https://bucket.s3.cn-north-1.amazonaws.com.cn", True),
        ("http://seaweedfs:8333", False),
        ("http://127.0.0.1:8333", False),
        ("http://amazonaws.com.example.org", False),
    ],
)
def test_only_a_local_s3_is_seeded(endpoint, aws):
    assert seed_module.is_aws_endpoint(endpoint) is aws


def test_main_leaves_a_real_aws_bucket_alone(s3, monkeypatch, caplog):
    caplog.set_level("INFO")
    monkeypatch.setattr(seed_module, "s3_client_from_airflow", lambda conn_id: s3)
    assert seed_module.main(["--bucket", "real-bank", "--prefix", "fruits-360"]) == 0
    assert "sample data not uploaded" in caplog.text
    assert "real-bank" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
