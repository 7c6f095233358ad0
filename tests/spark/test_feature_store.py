"""The feature store on real images: what a run reuses, computes and stores, and what it never
leaves behind (a failed or killed run, overlapping writers)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.conftest import WEIGHTS
from tests.spark.conftest import job_args
from tests.spark.images import BROKEN_REJECTED, build_input, sample_images
from tests.spark.stores import feature_rows, file_uri, open_store

pytestmark = pytest.mark.slow

BANK = {"Banana": 5, "Apple Braeburn": 5, "Kiwi": 5, "Lemon": 3}
K = 4


def run_job(spark, bank: Path, output: Path, store: Path, *extra: str) -> dict:
    from fruits_job.job import parse as parse_args
    from fruits_job.job import run

    args = parse_args(
        job_args(
            bank,
            output,
            *("--mode", "full", "--pca-components", str(K), "--run-id", output.name),
            *("--feature-store", str(store)),
            "--export-features",
            *extra,
        )
    )
    return run(spark, args)


def features_by_path(output: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(output / "features" / "parquet").to_pandas()
    return {
        path: np.asarray(vector) for path, vector in zip(table.path, table.features, strict=True)
    }


def table_rows(spark, store: Path, version: int | None = None) -> pd.DataFrame:
    """The store's table now, or as of a version (fingerprint, path, bytes, modified,
    features, run_id, computed_at)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(str(store / "features")).toPandas()


@pytest.fixture(scope="module")
def history(spark, tmp_path_factory):
    """Run 1 on a bank, then a bank changed as a week of photos changes it, run 2."""
    work = tmp_path_factory.mktemp("store")
    bank = build_input(work / "bank", BANK, broken_class="Lemon")
    store = work / "store"
    first = run_job(spark, bank, work / "run1", store)
    before = features_by_path(work / "run1")

    training = bank / "Training"
    added = []
    for path in sample_images("Kiwi", 8)[5:]:  # three new photos
        shutil.copy(path, training / "Kiwi" / path.name)
        added.append(training / "Kiwi" / path.name)
    deleted = sorted((training / "Banana").glob("*.jpg"))[:2]
    for path in deleted:
        path.unlink()
    resized, touched = sorted((training / "Apple Braeburn").glob("*.jpg"))[:2]
    with Image.open(resized) as image:  # new content, new size
        image.rotate(90).save(resized, quality=90)
    later = touched.stat().st_mtime + 3600  # same bytes, a new time: a re-upload
    os.utime(touched, (later, later))
    second = run_job(spark, bank, work / "run2", store)
    return {
        "work": work,
        "bank": bank,
        "store": store,
        "first": first,
        "second": second,
        "before": before,
        "after": features_by_path(work / "run2"),
        "added": added,
        "deleted": deleted,
        "modified": [resized, touched],
    }


def test_the_first_run_computes_everything_and_stores_only_features(spark, history):
    counts = history["first"]["counts"]
    assert (counts["features_reused"], counts["features_computed"]) == (0, counts["features"])
    block = history["first"]["feature_store"]
    # A new table: created (version 0), then this run's merge.
    assert (block["version_read"], block["version_written"]) == (None, 1)
    stored = table_rows(spark, history["store"], block["version_written"])
    stored = stored[stored.fingerprint == block["fingerprint_id"]]
    # Errors are never stored: a broken image is tried again by the next run.
    assert len(stored) == counts["features"] == counts["images_selected"] - len(BROKEN_REJECTED)
    assert not any(name in path for path in stored.path for name in BROKEN_REJECTED)
    assert list(stored.columns) == [
        *("fingerprint", "path", "bytes", "modified", "features", "run_id", "computed_at")
    ]
    assert set(stored.run_id) == {history["first"]["run_id"]}


def test_only_added_and_modified_images_are_computed(history):
    first, second = history["first"]["counts"], history["second"]["counts"]
    assert history["second"]["feature_store"]["version_read"] == 1
    assert history["second"]["feature_store"]["version_written"] == 2
    changed = len(history["added"]) + len(history["modified"])
    unchanged = first["features"] - len(history["deleted"]) - len(history["modified"])
    assert (second["features_computed"], second["features_reused"]) == (changed, unchanged)
    assert second["features"] == first["features"] - len(history["deleted"]) + len(history["added"])


def test_reused_rows_are_bit_identical_and_deleted_images_are_gone(history):
    before, after = history["before"], history["after"]
    modified = {file_uri(p) for p in history["modified"]}
    reused = set(before) & set(after) - modified
    assert len(reused) == history["second"]["counts"]["features_reused"]
    for path in reused:
        assert before[path].tobytes() == after[path].tobytes(), path
    # The re-encoded photo was computed again: its features changed.
    (resized, _) = history["modified"]
    assert not np.allclose(before[file_uri(resized)], after[file_uri(resized)])
    for path in history["deleted"]:
        assert file_uri(path) not in after
    for path in history["added"]:
        assert file_uri(path) in after
    metadata = pq.read_table(history["work"] / "run2" / "metadata" / "parquet").to_pandas()
    assert not set(map(file_uri, history["deleted"])) & set(metadata.path)


def test_the_pca_is_fitted_on_every_image_reused_or_not(history):
    run2 = history["work"] / "run2"
    pca = pq.read_table(run2 / "pca" / "parquet").to_pandas()
    assert len(pca) == history["second"]["counts"]["features"]
    paths = sorted(history["after"])
    matrix = np.stack([history["after"][p] for p in paths]).astype(np.float64)
    centered = matrix - matrix.mean(axis=0)
    eigenvalues = np.linalg.eigvalsh(centered.T @ centered / (len(paths) - 1))[::-1]
    expected = eigenvalues[:K] / eigenvalues.sum()
    np.testing.assert_allclose(history["second"]["explained_variance"], expected, rtol=1e-6)


def test_a_run_read_back_as_of_its_version_gives_its_features(spark, history):
    """Time travel: the table at the version a run wrote holds its features, bit for bit."""
    block = history["first"]["feature_store"]
    table = str(history["store"] / "features")
    then = spark.read.format("delta").option("versionAsOf", block["version_written"]).load(table)
    then = then.where(then.fingerprint == block["fingerprint_id"]).toPandas()
    before = history["before"]
    assert set(then.path) == set(before)
    for path, vector in zip(then.path, then.features, strict=True):
        assert np.asarray(vector, dtype=np.float32).tobytes() == before[path].tobytes(), path


def test_a_run_that_fails_after_its_features_keeps_them(spark, history, tmp_path):
    """Features are committed as soon as the feature stage ends: a later failure keeps them,
    and the next run reuses them."""
    from fruits_job.bank import JobInputError

    store = tmp_path / "store"
    shutil.copytree(history["store"], store)
    bank = tmp_path / "bank"
    shutil.copytree(history["bank"], bank)
    new = sample_images("Banana", 7)[6]
    shutil.copy(new, bank / "Training" / "Banana" / new.name)
    images = history["second"]["counts"]["images_selected"] + 1
    # The copy stands for the bank: the same keys (copytree keeps sizes and times).
    same_bank = ("--input-as", file_uri(history["bank"]))
    # K above the images that can be read (three are broken): found after the features.
    with pytest.raises(JobInputError, match="too few for"):
        run_job(
            spark, bank, tmp_path / "failed", store, "--pca-components", str(images - 1), *same_bank
        )
    assert len(table_rows(spark, store)) == len(table_rows(spark, history["store"])) + 1
    info = run_job(spark, bank, tmp_path / "next", store, *same_bank)
    assert (info["counts"]["features_computed"], info["counts"]["features_reused"]) == (
        0,
        history["second"]["counts"]["features"] + 1,
    )


@pytest.mark.long
def test_a_killed_run_leaves_the_table_readable_and_consistent(spark, history, tmp_path):
    """SIGKILL of the whole job (spark-submit, its JVM and workers) once its features are
    merged: the table is readable, holds them once, and the next run reuses them."""
    from fruits_contract.job_request import JobRequest
    from fruits_features.job_invocation import JobInvocation, local_spark_submit
    from fruits_features.job_package import build_job_zip
    from tests.conftest import ENTRY_POINT, REPO

    store = tmp_path / "store"
    shutil.copytree(history["store"], store)
    bank = tmp_path / "bank"
    shutil.copytree(history["bank"], bank)
    new = sample_images("Strawberry", 1)[0]
    (bank / "Training" / "Strawberry").mkdir()
    shutil.copy(new, bank / "Training" / "Strawberry" / new.name)
    request = JobRequest(
        input_uri=str(bank),
        output_uri=str(tmp_path / "killed"),
        weights_uri=str(WEIGHTS),
        mode="full",
        pca_components=K,
        run_id="killed",
        feature_store=str(store),
        input_as=file_uri(history["bank"]),
    )
    command, env = local_spark_submit(
        JobInvocation(str(ENTRY_POINT), str(build_job_zip(REPO, tmp_path)), request)
    )
    job = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    seen = []
    try:
        for line in job.stdout:
            seen.append(line)
            if "stage store_write: done" in line:
                os.killpg(job.pid, signal.SIGKILL)
                break
    finally:
        job.wait(timeout=60)
    assert job.returncode == -signal.SIGKILL, "".join(seen[-30:])
    assert not (tmp_path / "killed" / "_SUCCESS").exists()
    rows = table_rows(spark, store)
    assert len(rows) == len(table_rows(spark, history["store"])) + 1
    assert not rows.duplicated(["fingerprint", "path", "bytes", "modified"]).any()
    info = run_job(spark, bank, tmp_path / "next", store, "--input-as", file_uri(history["bank"]))
    counts = info["counts"]
    assert (counts["features_computed"], counts["features_reused"]) == (
        0,
        history["second"]["counts"]["features"] + 1,
    )


@pytest.mark.long
def test_a_changed_engine_or_weights_file_starts_cold(spark, history, tmp_path):
    import h5py

    store = tmp_path / "store"
    shutil.copytree(history["store"], store)
    tensorflow = run_job(spark, history["bank"], tmp_path / "tf", store, "--engine", "tensorflow")
    assert tensorflow["counts"]["features_reused"] == 0
    # The same weights but one number: another file, another fingerprint.
    weights = tmp_path / WEIGHTS.name
    shutil.copy(WEIGHTS, weights)
    with h5py.File(weights, "r+") as h5:
        kernels = []
        h5.visititems(lambda name, item: kernels.append(name) if "vars/0" in name else None)
        h5[kernels[0]][(0,) * h5[kernels[0]].ndim] += 1e-3
    changed = run_job(spark, history["bank"], tmp_path / "w", store, "--weights", str(weights))
    assert changed["counts"]["features_reused"] == 0
    assert set(table_rows(spark, store).fingerprint) == {
        history["second"]["feature_store"]["fingerprint_id"],
        tensorflow["feature_store"]["fingerprint_id"],
        changed["feature_store"]["fingerprint_id"],
    }
    assert changed["weights"]["sha256"] != history["second"]["weights"]["sha256"]
    assert changed["feature_store"]["fingerprint"]["weights_sha256"] == changed["weights"]["sha256"]
    described = store / "fingerprints" / f"{changed['feature_store']['fingerprint_id']}.json"
    assert json.loads(described.read_text()) == changed["feature_store"]["fingerprint"]


def test_the_fingerprint_follows_the_code_not_its_comments(tmp_path, monkeypatch):
    """A change to what the preprocessing, feature or export code does starts cold; a comment
    or a docstring does not."""
    import importlib
    import sys

    from fruits_job.code_digest import code_digest

    package = tmp_path / "probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "shaping.py"
    monkeypatch.syspath_prepend(str(tmp_path))

    def digest(source: str) -> str:
        module.write_text(source)
        sys.modules.pop("probe_pkg.shaping", None)
        importlib.invalidate_caches()
        return code_digest(("probe_pkg.shaping",))

    base = digest('"""Scale."""\n\ndef scale(x):\n    return x / 127.5 - 1.0\n')
    assert digest('"""Scale it."""\n\n\ndef scale(x):  # why\n    return x / 127.5 - 1.0\n') == base
    assert digest('"""Scale."""\n\ndef scale(x):\n    return x / 128.0 - 1.0\n') != base


def test_recompute_refreshes_the_stored_rows_in_place(spark, history, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(history["store"], store)
    before = table_rows(spark, store)
    info = run_job(spark, history["bank"], tmp_path / "again", store, "--recompute")
    counts = info["counts"]
    assert (counts["features_reused"], counts["features_computed"]) == (0, counts["features"])
    after = table_rows(spark, store)
    # The same keys, once each: refreshed, not duplicated.
    assert len(after) == len(before)
    assert not after.duplicated(["fingerprint", "path", "bytes", "modified"]).any()
    fresh = set(after[after.run_id == info["run_id"]].path)
    assert len(fresh) == counts["features"]


def test_a_store_under_segments_spaces_and_non_ascii_works(spark, history, tmp_path):
    store = tmp_path / "segments" / "a store" / "été"
    first = run_job(spark, history["bank"], tmp_path / "one", store)
    second = run_job(spark, history["bank"], tmp_path / "two", store)
    assert second["counts"]["features_reused"] == first["counts"]["features"] > 0
    assert second["counts"]["features_computed"] == 0


def test_an_old_segment_store_is_named_and_ignored(spark, history, tmp_path, caplog):
    store = tmp_path / "store"
    old = store / "3d83355e994c49d9"
    (old / "commits").mkdir(parents=True)
    (old / "segments").mkdir()
    info = run_job(spark, history["bank"], tmp_path / "one", store)
    assert info["counts"]["features_reused"] == 0
    assert "is a segment store of an earlier version" in caplog.text
    assert str(old) in caplog.text


def test_overlapping_writers_keep_both_runs_feature_rows(spark, tmp_path):
    """Two runs merging at once (overlapping on two images): both runs' rows are kept, each
    key once; the writer lock orders them (the first one's rows stand for the shared keys)."""
    root = tmp_path / "store"
    paths = [f"s3://b/Training/A/{i}.jpg" for i in range(6)]
    jobs = {"run-1": (paths[:4], 1.0), "run-2": (paths[2:], 2.0)}
    errors, versions = [], {}

    def write(run_id: str, rows: list[str], value: float) -> None:
        try:
            versions[run_id] = open_store(spark, root).merge(
                feature_rows(spark, rows, value), run_id
            )
        except Exception as error:  # reported below: a thread's exception is lost otherwise
            errors.append(error)

    threads = [threading.Thread(target=write, args=(r, *job)) for r, job in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(versions.values()) == [1, 2]
    rows = table_rows(spark, root)
    assert sorted(rows.path) == paths
    first = min(versions, key=versions.get)
    shared = rows[rows.path.isin(paths[2:4])]
    assert set(shared.run_id) == {first}
    assert set(rows.run_id) == {"run-1", "run-2"}


def test_a_changed_file_is_another_key(spark, tmp_path):
    store = open_store(spark, tmp_path)
    store.merge(feature_rows(spark, ["a", "b"], 1.0), "run")
    store = open_store(spark, tmp_path)
    wanted = spark.createDataFrame(
        [("a", 10, 1000), ("b", 11, 1000), ("c", 10, 1000)],
        "path string, bytes long, modified long",
    )
    found = wanted.join(store.stored(), ["path", "bytes", "modified"]).select("path", "bytes")
    assert [tuple(r) for r in found.collect()] == [("a", 10)]
    other = open_store(spark, tmp_path, sha="1" * 64)
    assert other.stored().count() == 0


@pytest.mark.long
def test_the_lookup_of_a_big_table_keeps_per_image_data_off_the_driver(tmp_path):
    """500,000 stored images, 5,000 new: the lookup is a join in Spark. With
    spark.driver.maxResultSize at 16 MB (the keys alone are ~30 MB), nothing of per-image
    size may come back to the driver."""
    from fruits_features.job_invocation import find_spark_submit, local_jars, local_spark_env
    from fruits_features.job_package import build_job_zip
    from tests.conftest import REPO

    out = tmp_path / "found.json"
    done = subprocess.run(
        [
            str(find_spark_submit()),
            *("--master", "local[2]", "--driver-memory", "1g"),
            *("--conf", "spark.ui.enabled=false", "--conf", "spark.driver.maxResultSize=16m"),
            *("--jars", ",".join(str(jar) for jar in local_jars())),
            *("--py-files", str(build_job_zip(REPO, tmp_path))),
            str(Path(__file__).with_name("lookup_probe.py")),
            *(file_uri(tmp_path / "store"), "500000", "5000", str(out)),
        ],
        env=local_spark_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads(out.read_text()) == {"to_compute": 5000, "reused": 500000}
