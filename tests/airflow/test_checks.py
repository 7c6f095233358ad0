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
from fruits_features.output_facts import facts_in_folder
from fruits_features.output_layout import RunFolder
from fruits_features.output_validation import Expected, OutputValidationError, validate_run

K = 3
IMAGES, ERRORS = 7, 2
EXPECTED = Expected(mode="mini", pca_components=K, images_selected=IMAGES, run_id="run-1")


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _dataset(folder: RunFolder, name: str, rows: list[dict], header: list[str]) -> None:
    """A data set in two parts, like Spark writes it: Parquet, and CSV where it has one."""
    halves = [rows[: len(rows) // 2], rows[len(rows) // 2 :]]
    for part, chunk in enumerate(halves):
        target = folder.dataset(name, layout.PARQUET) / f"part-0000{part}.snappy.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        columns = {c: [r[c] for r in chunk] for c in rows[0]} if rows else {"path": []}
        pq.write_table(pa.table(columns), target)
        if layout.CSV in layout.formats(name):
            vector = layout.VECTOR_COLUMN.get(name)
            lines = [
                [v for c, v in r.items() if c != vector] + list(r.get(vector) or []) for r in chunk
            ]
            _write_csv(folder.dataset(name, layout.CSV) / f"part-0000{part}.csv", header, lines)
    (folder.dataset(name, layout.PARQUET) / layout.SUCCESS).touch()


def make_run(path: Path, *, images=IMAGES, errors=ERRORS, k=K, dim=1280, export=True) -> Path:
    """A small but complete run folder: each data set in two parts, the summary, the record."""
    folder = RunFolder(path)
    ok = images - errors
    paths = [f"s3://b/in/Training/Apple A/{i}.jpg" for i in range(images)]
    notes = "s3://b/in/Training/Apple A/notes.txt"
    if export:
        features = [{"path": p, "label": "Apple A", "features": [0.5] * dim} for p in paths[:ok]]
        _dataset(folder, layout.FEATURES, features, layout.feature_columns()[: 2 + dim])
    pca = [{"path": p, "label": "Apple A", "pca": [0.5] * k} for p in paths[:ok]]
    _dataset(folder, layout.PCA, pca, layout.pca_columns(k))
    statuses = ["ok"] * ok + ["error"] * errors
    metadata = [
        {"path": p, "label": "Apple A", "bytes": 10, "modified": 0, "status": status}
        for p, status in zip(paths, statuses, strict=True)
    ]
    _dataset(folder, layout.METADATA, metadata, list(layout.METADATA_COLUMNS))
    failed = [
        {"path": p, "label": "Apple A", "bytes": 10, "reason": "cannot identify image file"}
        for p in paths[ok:]
    ]
    _dataset(folder, layout.ERRORS, failed, list(layout.ERROR_COLUMNS))
    skipped = [{"path": notes, "label": "Apple A", "bytes": 3, "reason": "not an image file"}]
    _dataset(folder, layout.SKIPPED, skipped, list(layout.SKIPPED_COLUMNS))
    listing = [{"path": p, "bytes": 10, "modified": 0} for p in [*paths, notes]]
    _dataset(folder, layout.LISTING, listing, list(layout.LISTING_COLUMNS))
    _write_csv(
        folder.file(layout.SUMMARY_CLASSES),
        list(layout.CLASS_COLUMNS),
        [["Apple A", images, errors]],
    )
    _write_csv(
        folder.file(layout.SUMMARY_ERRORS),
        list(layout.ERROR_COLUMNS),
        [list(r.values()) for r in failed],
    )
    _write_csv(
        folder.file(layout.SUMMARY_SKIPPED),
        list(layout.ERROR_COLUMNS),
        [list(r.values()) for r in skipped],
    )
    sample = folder.file(layout.SUMMARY_PCA_SAMPLE)
    sample.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(pca), sample / "part-00000.parquet")
    cumulative = [round(0.3 * (i + 1), 3) for i in range(k)]
    _write_csv(
        folder.file(layout.VARIANCE_CSV),
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
        "features_exported": export,
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


def validate(folder: Path, expected: Expected = EXPECTED):
    return validate_run(folder, expected, facts_in_folder(folder))


def test_good_run_passes(tmp_path):
    report = validate(make_run(tmp_path))
    assert (report.images_selected, report.features, report.errors) == (7, 5, 2)
    assert report.variance_kept == pytest.approx(0.9)
    assert report.images_per_second == pytest.approx(2.0)
    assert "images 7, errors 2" in report.summary()


def test_run_without_errors_or_export_passes(tmp_path):
    validate(make_run(tmp_path, errors=0))
    validate(make_run(tmp_path / "b", export=False))


def _problem(folder: Path, expected: Expected = EXPECTED) -> str:
    with pytest.raises(OutputValidationError) as error:
        validate(folder, expected)
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
    assert "features/parquet has 5 rows, 6 expected" in message
    assert "pca/parquet has 5 rows, 6 expected" in message


def test_wrong_feature_width(tmp_path):
    folder = make_run(tmp_path, dim=1279)
    assert "features/parquet: 6395 vector values (0 null) for 5 rows, not 1280 each" in _problem(
        folder
    )


def test_wrong_pca_width(tmp_path):
    folder = make_run(tmp_path)
    assert "pca_components 3 != requested 4" in _problem(
        folder, Expected(mode="mini", pca_components=4)
    )
    folder = make_run(tmp_path / "b", k=4)
    _edit_info(folder, pca_components=3, explained_variance=[0.3] * 3)
    _edit_info(folder, cumulative_variance=[0.3, 0.6, 0.9], variance_kept=0.9)
    assert "pca/parquet: 20 vector values (0 null) for 5 rows, not 3 each" in _problem(folder)


def test_errors_must_match_their_count(tmp_path):
    folder = make_run(tmp_path)
    _edit_info(folder, errors=1, features=6)
    message = _problem(folder)
    assert "errors/parquet has 2 rows, 1 expected" in message
    assert "summary/errors.csv has 2 rows for 1 files" in message
    assert "summary/classes.csv counts 7 images, 2 errors; model_info 7, 1" in message


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
    message = _problem(folder)
    assert "pca/parquet: no part file" in message and "pca/parquet has 0 rows" in message


def test_a_truncated_part_is_named(tmp_path):
    folder = make_run(tmp_path)
    part = RunFolder(folder).parts(layout.METADATA, layout.PARQUET)[0]
    part.write_bytes(part.read_bytes()[:100])
    assert f"{layout.METADATA}/parquet/{part.name}: not a Parquet file" in _problem(folder)


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
    message = _problem(folder)
    assert "skipped/parquet has 1 rows, 2 expected" in message
    assert "summary/skipped.csv has 1 rows for 2 files" in message


def test_features_written_without_being_asked_are_refused(tmp_path):
    folder = make_run(tmp_path)
    _edit_info(folder, features_exported=False)
    assert "features/ written, but model_info says" in _problem(folder)


def test_a_summary_copy_is_summarised_from_its_record(tmp_path):
    from fruits_features.summary import describe

    folder = make_run(tmp_path)
    _edit_info(folder, engine="onnxruntime", output="s3://b/runs/mini/run-1")
    assert "features   5 computed" in describe(RunFolder(folder))
    for name in layout.DATASETS:
        shutil.rmtree(folder / name, ignore_errors=True)
    # Left on S3 by FRUITS_DOWNLOAD=summary: the record and summary are still checked.
    validate_run(folder, EXPECTED, None)
    assert "data sets left on S3" in describe(RunFolder(folder))
    RunFolder(folder).file(layout.SUMMARY_CLASSES).unlink()
    with pytest.raises(OutputValidationError, match=r"summary/classes\.csv missing"):
        validate_run(folder, EXPECTED, None)
