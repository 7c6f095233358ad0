"""Output validation on hand-made run folders laid out as docs/contract.md says."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fruits_contract import outputs as layout
from fruits_features.output_layout import RunFolder
from fruits_features.output_validation import (
    Expected,
    OutputValidationError,
    validate_output_folder,
)

K = 3
IMAGES, ERRORS = 7, 2
EXPECTED = Expected(mode="mini", pca_components=K, images_selected=IMAGES, run_id="run-1")


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def make_run(path: Path, *, images=IMAGES, errors=ERRORS, k=K, dim=1280) -> Path:
    """A small but complete run folder: two part files per data set, like Spark writes."""
    folder = RunFolder(path)
    ok = images - errors
    paths = [f"s3://b/in/Training/Apple A/{i}.jpg" for i in range(images)]
    halves = [range(0, ok // 2), range(ok // 2, ok)]
    for name, width, header in (
        (layout.FEATURES, dim, layout.feature_columns()[: 2 + dim]),
        (layout.PCA, k, layout.pca_columns(k)),
    ):
        column = layout.VECTOR_COLUMN[name]
        for part, rows in enumerate(halves):
            table = pa.table(
                {
                    "path": [paths[i] for i in rows],
                    "label": ["Apple A"] * len(rows),
                    column: [[0.5] * width for _ in rows],
                }
            )
            target = folder.dataset(name, layout.PARQUET) / f"part-0000{part}.snappy.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target)
            _write_csv(
                folder.dataset(name, layout.CSV) / f"part-0000{part}.csv",
                header,
                [[paths[i], "Apple A"] + [0.5] * width for i in rows],
            )
        (folder.dataset(name, layout.PARQUET) / layout.SUCCESS).touch()
    statuses = ["ok"] * ok + ["error"] * errors
    meta = pa.table(
        {"path": paths, "label": ["Apple A"] * images, "bytes": [10] * images, "status": statuses}
    )
    folder.dataset(layout.METADATA, layout.PARQUET).mkdir(parents=True, exist_ok=True)
    pq.write_table(meta, folder.dataset(layout.METADATA, layout.PARQUET) / "part-00000.parquet")
    _write_csv(
        folder.dataset(layout.METADATA, layout.CSV) / "part-00000.csv",
        list(layout.METADATA_COLUMNS),
        [[p, "Apple A", 10, status] for p, status in zip(paths, statuses, strict=True)],
    )
    _write_csv(
        folder.errors_csv,
        list(layout.ERROR_COLUMNS),
        [[paths[ok + i], "Apple A", 10, "cannot identify image file"] for i in range(errors)],
    )
    _write_csv(
        folder.skipped_csv,
        list(layout.SKIPPED_COLUMNS),
        [["s3://b/in/Training/Apple A/notes.txt", "Apple A", 3, "not an image file"]],
    )
    cumulative = [round(0.3 * (i + 1), 3) for i in range(k)]
    _write_csv(
        folder.variance_csv,
        list(layout.VARIANCE_COLUMNS),
        [[i + 1, 0.3, c] for i, c in enumerate(cumulative)],
    )
    info = {
        "run_id": "run-1",
        "mode": "mini",
        "pca_components": k,
        "feature_dim": 1280,
        "counts": {
            "files_listed": images + 1,
            "skipped_files": 1,
            "images_selected": images,
            "features": ok,
            "errors": errors,
        },
        "explained_variance": [0.3] * k,
        "cumulative_variance": cumulative,
        "variance_kept": cumulative[-1],
        "duration_seconds": 3.5,
    }
    folder.model_info.write_text(json.dumps(info))
    folder.success.touch()
    return path


def _edit_info(folder: Path, **changes) -> None:
    path = RunFolder(folder).model_info
    info = json.loads(path.read_text())
    for key, value in changes.items():
        if key in info.get("counts", {}):
            info["counts"][key] = value
        else:
            info[key] = value
    path.write_text(json.dumps(info))


def test_good_run_passes(tmp_path):
    report = validate_output_folder(make_run(tmp_path), EXPECTED)
    assert (report.images_selected, report.features, report.errors) == (7, 5, 2)
    assert report.variance_kept == pytest.approx(0.9)
    assert report.images_per_second == pytest.approx(2.0)
    assert "images 7, errors 2" in report.summary()


def test_run_without_errors_passes(tmp_path):
    folder = make_run(tmp_path, errors=0)
    validate_output_folder(folder, EXPECTED)


def _problem(folder: Path, expected: Expected = EXPECTED) -> str:
    with pytest.raises(OutputValidationError) as error:
        validate_output_folder(folder, expected)
    return str(error.value)


def test_missing_success_marker(tmp_path):
    folder = make_run(tmp_path)
    RunFolder(folder).success.unlink()
    assert "_SUCCESS" in _problem(folder)


def test_missing_model_info(tmp_path):
    folder = make_run(tmp_path)
    RunFolder(folder).model_info.unlink()
    assert "model_info.json" in _problem(folder)


def test_inconsistent_counts(tmp_path):
    folder = make_run(tmp_path)
    _edit_info(folder, features=6)
    message = _problem(folder)
    assert "counts.features 6" in message
    assert "features/parquet has 5 rows" in message


def test_wrong_feature_width(tmp_path):
    folder = make_run(tmp_path, dim=1279)
    assert "feature vector sizes [1279]" in _problem(folder)


def test_wrong_pca_width(tmp_path):
    folder = make_run(tmp_path)
    assert "pca_components 3 != requested 4" in _problem(
        folder, Expected(mode="mini", pca_components=4)
    )
    folder = make_run(tmp_path / "b", k=4)
    _edit_info(folder, pca_components=3, explained_variance=[0.3] * 3)
    _edit_info(folder, cumulative_variance=[0.3, 0.6, 0.9], variance_kept=0.9)
    assert "PCA vector sizes [4]" in _problem(folder)


def test_errors_csv_must_match_count(tmp_path):
    folder = make_run(tmp_path)
    _write_csv(RunFolder(folder).errors_csv, list(layout.ERROR_COLUMNS), [])
    assert "errors/errors.csv has 0 rows, model_info counts 2 errors" in _problem(folder)


def test_outputs_of_another_request(tmp_path):
    folder = make_run(tmp_path)
    message = _problem(
        folder,
        Expected(
            mode="apples", pca_components=K, images_selected=8, run_id="other", skipped_files=0
        ),
    )
    assert "mode 'mini' != requested 'apples'" in message
    assert "skipped_files 1 != 0 found on S3" in message
    assert "images_selected 7 != planned 8" in message
    assert "run_id 'run-1' != 'other'" in message


def test_missing_data_set(tmp_path):
    folder = make_run(tmp_path)
    for part in RunFolder(folder).dataset(layout.PCA, layout.PARQUET).iterdir():
        part.unlink()
    assert "pca/parquet has 0 rows" in _problem(folder)


def test_csv_a_standard_reader_reads_wrong_is_refused(tmp_path):
    # A backslash-escaped quote (Spark's default): not what a standard reader reads.
    folder = make_run(tmp_path)
    part = RunFolder(folder).dataset(layout.PCA, layout.CSV) / "part-00000.csv"
    lines = part.read_text().splitlines()
    lines[1] = '"s3://b/in/Training/Apple \\"Q\\" A/0.jpg",Apple A,0.5,0.5,0.5'
    part.write_text("\n".join(lines) + "\n")
    assert "pca/csv: part-00000.csv: not standard CSV" in _problem(folder)


def test_skipped_files_must_match_their_count(tmp_path):
    folder = make_run(tmp_path)
    _edit_info(folder, skipped_files=2)
    assert "errors/skipped.csv has 1 rows, model_info counts 2 skipped" in _problem(folder)


def test_a_summary_copy_is_summarised_without_its_features(tmp_path):
    from fruits_features.summary import describe

    folder = make_run(tmp_path)
    _edit_info(folder, engine="onnxruntime", output="s3://b/runs/mini/run-1")
    assert "features   5 computed" in describe(RunFolder(folder))
    shutil.rmtree(folder / "features")
    # Left on S3 by FRUITS_DOWNLOAD=summary: the rest is still checked, features/ is not.
    with pytest.raises(OutputValidationError, match="features/parquet has 0 rows"):
        validate_output_folder(folder, EXPECTED)
    validate_output_folder(folder, EXPECTED, check_features=False)
    assert "features/ left on S3" in describe(RunFolder(folder))
    shutil.rmtree(folder / "pca")
    with pytest.raises(OutputValidationError, match="pca/parquet has 0 rows"):
        validate_output_folder(folder, EXPECTED, check_features=False)
