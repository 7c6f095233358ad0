"""A bank holding every kind of bad file, through the DAG in local compute: nothing is lost.

Every file on S3 ends up, by name, in exactly one of the features, the errors (unreadable
images, with the reason) or the skipped files (not images, hidden, or not directly in a
class folder, with the reason); the CSV outputs are standard CSV; the paths in every output
are where the images live in the bank (S3 URIs), not a staging folder.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.airflow.conftest import BUCKET, QUIET_TEST_CLIENT
from tests.spark.images import broken_files, sample_images

pytestmark = [
    pytest.mark.slow,
    pytest.mark.long,
    pytest.mark.usefixtures("airflow_db"),
    QUIET_TEST_CLIENT,
]

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "fruits_features_dag.py"
QUOTED_CLASS = 'Apple "Quote" O\'Neil'
COMMA_CLASS = "Banana, Red"
# AppleDouble: what macOS writes next to every file it copies to a foreign disk.
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64)


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def bad_bank() -> dict[str, tuple[bytes, str]]:
    """Key below Training/ → (bytes, what must become of it: features, error or skipped)."""
    banana, kiwi = sample_images("Banana", 4), sample_images("Kiwi", 4)
    real = Image.open(banana[0]).convert("RGB")
    broken = broken_files(banana[0])
    bank = {f"Banana/{p.name}": (p.read_bytes(), "features") for p in banana[1:]}
    bank |= {f"{QUOTED_CLASS}/{p.name}": (p.read_bytes(), "features") for p in kiwi[:2]}
    bank |= {f"{COMMA_CLASS}/{p.name}": (p.read_bytes(), "features") for p in kiwi[2:]}
    bank |= {
        "Banana/truncated.jpg": (broken["truncated.jpg"], "error"),
        "Banana/empty.jpg": (broken["empty.jpg"], "error"),
        "Banana/text.jpg": (broken["text.jpg"], "error"),
        "Banana/png_named.jpg": (broken["png_named.jpg"], "features"),
        "Banana/grayscale.jpg": (broken["grayscale.jpg"], "features"),
        "Banana/cmyk.jpg": (broken["cmyk.jpg"], "features"),
        "Banana/huge 6000x6000.jpg": (_jpeg(real.resize((6000, 6000))), "features"),
        "Banana/tiny 1x1.jpg": (_jpeg(real.resize((1, 1))), "features"),
        "Banana/pomme été, 1.jpg": (banana[0].read_bytes(), "features"),
        "Banana/new\nline.jpg": (banana[0].read_bytes(), "features"),
        "Banana/README.txt": (b"not an image\n", "skipped"),
        "stray.jpg": (banana[0].read_bytes(), "skipped"),
        "Banana/._IMG_0001.jpg": (APPLE_DOUBLE, "skipped"),
        "Banana/thumbs/small.jpg": (banana[0].read_bytes(), "skipped"),
        # Names Hadoop hides or refuses: the job neither lists nor reads through Hadoop.
        "Banana/_underscore.jpg": (banana[0].read_bytes(), "features"),
        "Banana/IMG 12:30:01.jpg": (banana[0].read_bytes(), "features"),
        "Banana/100% #1?.jpg": (banana[0].read_bytes(), "features"),
    }
    return bank


def _csv_rows(path: Path) -> list[dict[str, str]]:
    """A CSV file read by Python's standard reader; every row as wide as the header."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    assert all(len(row) == len(header) for row in body), path
    pd.read_csv(path)  # and pandas reads it too
    return [dict(zip(header, row, strict=True)) for row in body]


def test_every_file_of_a_bad_bank_is_accounted_for_by_name(
    monkeypatch, pipeline_env, s3_server, tmp_path, capfd
):
    from airflow.dag_processing.dagbag import DagBag

    prefix = f"banks/{tmp_path.name}/fruits-360"
    bank = bad_bank()
    client = s3_server.client()
    for key, (data, _) in bank.items():
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/Training/{key}", Body=data)
    monkeypatch.setenv("FRUITS_INPUT_PREFIX", prefix)
    monkeypatch.setenv("FRUITS_COMPUTE", "local")
    # A full run leaves its data sets on S3 and exports no vectors by default; this test
    # reads every row of them.
    monkeypatch.setenv("FRUITS_DOWNLOAD", "all")
    dag = DagBag(dag_folder=str(DAG_FILE)).dags["fruits_features"]

    run = dag.test(run_conf={"mode": "full", "pca_components": 3, "export_features": "always"})

    got = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", got
    uri = {key: f"s3://{BUCKET}/{prefix}/Training/{key}" for key in bank}
    (folder,) = (Path(pipeline_env["FRUITS_RESULTS_DIR"]) / "full").iterdir()

    features = pq.read_table(folder / "features" / "parquet").to_pandas()
    errors = [
        row
        for part in sorted((folder / "errors" / "csv").glob("part-*.csv"))
        for row in _csv_rows(part)
    ]
    skipped = [
        row
        for part in sorted((folder / "skipped" / "csv").glob("part-*.csv"))
        for row in _csv_rows(part)
    ]
    outcome = (
        {path: "features" for path in features["path"]}
        | {row["path"]: "error" for row in errors}
        | {row["path"]: "skipped" for row in skipped}
    )
    # Each file once, by its S3 URI, where it belongs.
    assert len(features) + len(errors) + len(skipped) == len(bank)
    assert outcome == {uri[key]: what for key, (_, what) in bank.items()}
    reasons = {row["path"]: row["reason"] for row in errors + skipped}
    assert "empty file" in reasons[uri["Banana/empty.jpg"]]
    assert "corrupt image" in reasons[uri["Banana/truncated.jpg"]]
    assert "not an image" in reasons[uri["Banana/text.jpg"]]
    assert "hidden" in reasons[uri["Banana/._IMG_0001.jpg"]]
    assert "in a folder inside its class folder" in reasons[uri["Banana/thumbs/small.jpg"]]
    assert "not an image file" in reasons[uri["Banana/README.txt"]]
    assert "not in a class folder" in reasons[uri["stray.jpg"]]

    # Standard CSV everywhere, quotes and commas in labels and paths read back intact.
    info = json.loads((folder / "model_info" / "model_info.json").read_text())
    counts = info["counts"]
    assert counts["files_listed"] == len(bank)
    assert (counts["features"], counts["errors"], counts["skipped_files"]) == (
        len(features),
        len(errors),
        len(skipped),
    )
    for name in ("features", "pca", "metadata", "errors", "skipped"):
        for part in sorted((folder / name / "csv").glob("part-*.csv")):
            for row in _csv_rows(part):
                assert row["path"].startswith(f"s3://{BUCKET}/{prefix}/Training/")
    metadata = pq.read_table(folder / "metadata" / "parquet").to_pandas()
    assert set(metadata["label"]) >= {QUOTED_CLASS, COMMA_CLASS}
    assert info["input"] == f"s3://{BUCKET}/{prefix}"
    assert (
        info["output"] == f"s3://{BUCKET}/{pipeline_env['FRUITS_OUTPUT_PREFIX']}/full/{folder.name}"
    )

    # The skipped files were named before any compute, by check_inputs.
    log = capfd.readouterr().out
    check_log = log.split("run_spark_locally")[0]
    for key in ("Banana/._IMG_0001.jpg", "Banana/thumbs/small.jpg", "stray.jpg"):
        assert key in check_log
    report = (folder / "report" / "report.html").read_text()
    assert "small.jpg" in report and "README.txt" in report
