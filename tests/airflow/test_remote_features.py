"""features/ checked on S3 (a summary download): from the part ends, it must see what the
whole downloaded folder shows, and refuse what the folder check refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fruits_features.output_layout import RunFolder
from fruits_features.output_validation import (
    Expected,
    OutputValidationError,
    features_in_folder,
    validate_output_folder,
)
from fruits_features.remote_features import features_on_s3
from tests.airflow.conftest import BUCKET, JOB_K, JOB_LIMIT, JOB_MODE

pytestmark = pytest.mark.slow
EXPECTED = Expected(mode=JOB_MODE, pca_components=JOB_K, images_selected=JOB_LIMIT)


def upload(s3_server, folder: Path, prefix: str) -> None:
    client = s3_server.client()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".crc"):
        client.upload_file(str(path), BUCKET, f"{prefix}{path.relative_to(folder).as_posix()}")


def summary_copy(job_outputs: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "summary"
    shutil.copytree(job_outputs, folder, ignore=shutil.ignore_patterns("features"))
    return folder


def test_the_part_ends_on_s3_tell_what_the_whole_folder_tells(s3_server, job_outputs, tmp_path):
    prefix = f"remote/{tmp_path.name}/"
    upload(s3_server, job_outputs, prefix)

    remote = features_on_s3(s3_server.hook(), BUCKET, prefix)
    local = features_in_folder(RunFolder(job_outputs))

    assert remote.problems == local.problems == []
    assert (remote.rows, remote.lengths, remote.nulls) == (local.rows, local.lengths, local.nulls)
    assert remote.rows == JOB_LIMIT and remote.lengths == {1280}
    assert remote.csv_headers == local.csv_headers and len(remote.csv_headers[0]) == 1282
    report = validate_output_folder(summary_copy(job_outputs, tmp_path), EXPECTED, remote)
    assert report.features == JOB_LIMIT


def test_a_broken_or_missing_part_on_s3_fails_validation(s3_server, job_outputs, tmp_path):
    prefix = f"remote/{tmp_path.name}/"
    upload(s3_server, job_outputs, prefix)
    client = s3_server.client()
    parts = [k for k in s3_server.keys(f"{prefix}features/parquet/") if k.endswith(".parquet")]
    csv_parts = [k for k in s3_server.keys(f"{prefix}features/csv/") if k.endswith(".csv")]
    folder = summary_copy(job_outputs, tmp_path)

    # Cut short, as an interrupted copy would leave it.
    body = client.get_object(Bucket=BUCKET, Key=parts[0])["Body"].read()
    client.put_object(Bucket=BUCKET, Key=parts[0], Body=body[: len(body) // 2])
    seen = features_on_s3(s3_server.hook(), BUCKET, prefix)
    assert any(parts[0].rsplit("/", 1)[-1] in p for p in seen.problems), seen.problems
    with pytest.raises(OutputValidationError, match="features/parquet"):
        validate_output_folder(folder, EXPECTED, seen)

    # Gone: fewer rows than counts.features says.
    client.put_object(Bucket=BUCKET, Key=parts[0], Body=body)
    for key in parts[1:] or parts:
        client.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(OutputValidationError, match="features/parquet has"):
        validate_output_folder(folder, EXPECTED, features_on_s3(s3_server.hook(), BUCKET, prefix))

    # A CSV part whose header is not the contract's.
    upload(s3_server, job_outputs, prefix)
    client.put_object(Bucket=BUCKET, Key=csv_parts[0], Body=b"path,label,f0000\nx,y,1\n")
    with pytest.raises(OutputValidationError, match="features/csv"):
        validate_output_folder(folder, EXPECTED, features_on_s3(s3_server.hook(), BUCKET, prefix))
