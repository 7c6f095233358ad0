"""A run's data sets checked on S3 from their part files' ends (what validate_outputs does
for any run): they must tell what the whole downloaded folder tells, and refuse what it
refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fruits_contract import outputs as layout
from fruits_features.output_facts import facts_in_folder, facts_on_s3
from fruits_features.output_validation import Expected, OutputValidationError, validate_run
from tests.airflow.conftest import BUCKET, JOB_K, JOB_LIMIT, JOB_MODE

pytestmark = pytest.mark.slow
EXPECTED = Expected(mode=JOB_MODE, pca_components=JOB_K, images_selected=JOB_LIMIT)


def upload(s3_server, folder: Path, prefix: str) -> None:
    client = s3_server.client()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".crc"):
        client.upload_file(str(path), BUCKET, f"{prefix}{path.relative_to(folder).as_posix()}")


def summary_copy(job_outputs: Path, tmp_path: Path) -> Path:
    """What a summary download holds: the record and summary/, no data set."""
    folder = tmp_path / "summary"
    shutil.copytree(job_outputs, folder, ignore=shutil.ignore_patterns(*layout.DATASETS))
    return folder


def test_the_part_ends_on_s3_tell_what_the_whole_folder_tells(s3_server, job_outputs, tmp_path):
    prefix = f"remote/{tmp_path.name}/"
    upload(s3_server, job_outputs, prefix)

    remote = facts_on_s3(s3_server.hook(), BUCKET, prefix)
    local = facts_in_folder(job_outputs)

    assert set(remote) == set(local) == set(layout.DATASETS)
    for name in layout.DATASETS:
        seen, whole = remote[name], local[name]
        assert seen.problems == whole.problems == [], name
        assert (seen.rows, seen.vector_values, seen.vector_nulls, seen.csv_headers) == (
            whole.rows, whole.vector_values, whole.vector_nulls, whole.csv_headers,
        ), name  # fmt: skip
        assert (seen.parquet_parts, seen.csv_parts) == (whole.parquet_parts, whole.csv_parts)
    assert remote[layout.FEATURES].rows == JOB_LIMIT
    assert remote[layout.FEATURES].vector_values == JOB_LIMIT * 1280
    assert len(remote[layout.FEATURES].csv_headers[0]) == 1282
    # Only the downloaded parts are read whole: CSV rows are counted there.
    assert remote[layout.PCA].csv_rows is None and local[layout.PCA].csv_rows == JOB_LIMIT
    report = validate_run(summary_copy(job_outputs, tmp_path), EXPECTED, remote)
    assert report.features == JOB_LIMIT


def test_a_broken_or_missing_part_on_s3_fails_validation(s3_server, job_outputs, tmp_path):
    prefix = f"remote/{tmp_path.name}/"
    upload(s3_server, job_outputs, prefix)
    client = s3_server.client()
    parts = [k for k in s3_server.keys(f"{prefix}pca/parquet/") if k.endswith(".parquet")]
    csv_parts = [k for k in s3_server.keys(f"{prefix}metadata/csv/") if k.endswith(".csv")]
    folder = summary_copy(job_outputs, tmp_path)

    def problems() -> str:
        with pytest.raises(OutputValidationError) as error:
            validate_run(folder, EXPECTED, facts_on_s3(s3_server.hook(), BUCKET, prefix))
        return str(error.value)

    # Cut short, as an interrupted copy would leave it.
    body = client.get_object(Bucket=BUCKET, Key=parts[0])["Body"].read()
    client.put_object(Bucket=BUCKET, Key=parts[0], Body=body[: len(body) // 2])
    assert f"{parts[0][len(prefix) :]}: not a Parquet file" in problems()

    # Gone: fewer rows than counts.features says.
    client.put_object(Bucket=BUCKET, Key=parts[0], Body=body)
    for key in parts:
        client.delete_object(Bucket=BUCKET, Key=key)
    assert f"pca/parquet has 0 rows, {JOB_LIMIT} expected" in problems()

    # A CSV part whose header is not the contract's.
    upload(s3_server, job_outputs, prefix)
    client.put_object(Bucket=BUCKET, Key=csv_parts[0], Body=b"path,label\nx,y\n")
    assert "metadata/csv: header of 2 fields, 5 wanted" in problems()
