"""The feature store on real images: what a run reuses, computes and stores, and what it never
leaves behind (a failed or killed run, overlapping writers)."""

from __future__ import annotations

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
            *extra,
        )
    )
    return run(spark, args)


def features_by_path(output: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(output / "features" / "parquet").to_pandas()
    return {
        path: np.asarray(vector) for path, vector in zip(table.path, table.features, strict=True)
    }


def commits(store: Path) -> set[str]:
    return {p.name for p in store.glob("*/commits/*.json")}


def segments(store: Path) -> set[str]:
    return {p.name for p in store.glob("*/segments/*")}


def file_uri(path: Path) -> str:
    return f"file:{path}"


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


def test_the_first_run_computes_everything_and_stores_only_features(history):
    counts = history["first"]["counts"]
    assert (counts["features_reused"], counts["features_computed"]) == (0, counts["features"])
    segment = history["first"]["feature_store"]["segment"]
    (folder,) = history["store"].glob(f"*/segments/{segment}")
    assert {f"{segment}.json"} < commits(history["store"])
    stored = pq.read_table(folder).to_pandas()
    # Errors are never stored: a broken image is tried again by the next run.
    assert len(stored) == counts["features"] == counts["images_selected"] - len(BROKEN_REJECTED)
    assert not any(name in path for path in stored.path for name in BROKEN_REJECTED)
    assert set(stored.columns) == {"path", "bytes", "modified", "features"}


def test_only_added_and_modified_images_are_computed(history):
    first, second = history["first"]["counts"], history["second"]["counts"]
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


def test_a_run_that_fails_after_writing_its_segment_leaves_the_store_as_it_was(
    spark, history, tmp_path
):
    from fruits_job.bank import JobInputError

    store = tmp_path / "store"
    shutil.copytree(history["store"], store)
    bank = tmp_path / "bank"
    shutil.copytree(history["bank"], bank)
    new = sample_images("Banana", 7)[6]
    shutil.copy(new, bank / "Training" / "Banana" / new.name)
    before = commits(store), segments(store)
    images = history["second"]["counts"]["images_selected"] + 1
    # The copy stands for the bank: the same keys (copytree keeps sizes and times).
    same_bank = ("--input-as", file_uri(history["bank"]))
    # K above the images that can be read (three are broken): found after the features.
    with pytest.raises(JobInputError, match="too few for"):
        run_job(
            spark, bank, tmp_path / "failed", store, "--pca-components", str(images - 1), *same_bank
        )
    assert commits(store) == before[0]
    # Its rows were written, never committed: the next run does not see them.
    assert len(segments(store) - before[1]) == 1
    info = run_job(spark, bank, tmp_path / "next", store, *same_bank)
    assert (info["counts"]["features_computed"], info["counts"]["features_reused"]) == (
        1,
        history["second"]["counts"]["features"],
    )


def test_a_killed_run_leaves_the_store_usable(spark, history, tmp_path):
    """SIGKILL of the whole job (spark-submit, its JVM and workers) once its segment is
    written, before its commit: the store still has only committed segments."""
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
    committed = commits(store)
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
    assert commits(store) == committed
    assert not (tmp_path / "killed" / "_SUCCESS").exists()
    # What the killed run wrote is there, and unused: the next run computes its image again.
    assert len(segments(store)) == len(committed) + 1
    info = run_job(spark, bank, tmp_path / "next", store, "--input-as", file_uri(history["bank"]))
    counts = info["counts"]
    assert (counts["features_computed"], counts["features_reused"]) == (
        1,
        history["second"]["counts"]["features"],
    )


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
    fingerprints = {p.name for p in store.iterdir()}
    assert len(fingerprints) == 3
    assert changed["weights"]["sha256"] != history["second"]["weights"]["sha256"]
    assert changed["feature_store"]["fingerprint"]["weights_sha256"] == changed["weights"]["sha256"]


def test_recompute_refreshes_the_store_and_the_newest_segment_wins(spark, history, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(history["store"], store)
    info = run_job(spark, history["bank"], tmp_path / "again", store, "--recompute")
    counts = info["counts"]
    assert (counts["features_reused"], counts["features_computed"]) == (0, counts["features"])
    assert len(commits(store)) == 3


def _store(spark, root: Path, sha: str = "0" * 64):
    from fruits_job.feature_store import FeatureStore, Fingerprint

    return FeatureStore(spark, file_uri(root), Fingerprint(sha, "onnxruntime", 224))


def _rows(spark, paths: list[str], value: float):
    rows = [(p, 10, 1000, [value] * 1280) for p in paths]
    return spark.createDataFrame(
        rows, "path string, bytes long, modified long, features array<float>"
    )


def _wanted(paths: list[str], sizes: list[int] | None = None) -> pd.DataFrame:
    sizes = sizes or [10] * len(paths)
    return pd.DataFrame({"path": paths, "bytes": sizes, "modified": [1000] * len(paths)})


def test_overlapping_writers_keep_every_segment_and_the_newest_wins(spark, tmp_path):
    from fruits_job.feature_store import new_segment_id

    store = _store(spark, tmp_path)
    paths = [f"s3://b/Training/A/{i}.jpg" for i in range(6)]
    # Two runs at once, overlapping on images 2 and 3.
    jobs = {new_segment_id(): (paths[:4], 1.0), new_segment_id(): (paths[2:], 2.0)}
    errors = []

    def write(segment: str, rows: list[str], value: float) -> None:
        try:
            store.write_segment(_rows(spark, rows, value), segment)
            store.commit(segment, len(rows), f"run-{value}")
        except Exception as error:  # reported below: a thread's exception is lost otherwise
            errors.append(error)

    threads = [threading.Thread(target=write, args=(s, *job)) for s, job in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.committed_segments() == sorted(jobs)
    found, features = store.lookup(_wanted(paths))
    assert found == set(paths)
    values = {row.path: row.features[0] for row in features.collect()}
    newest = max(jobs)
    assert values == {p: (jobs[newest][1] if p in jobs[newest][0] else 1.0) for p in paths}


def test_a_changed_file_or_an_unreadable_commit_is_not_reused(spark, tmp_path, caplog):
    from fruits_job.feature_store import new_segment_id

    store = _store(spark, tmp_path)
    segment = new_segment_id()
    store.write_segment(_rows(spark, ["a", "b"], 1.0), segment)
    store.commit(segment, 2, "run")
    wanted = _wanted(["a", "b", "c"], sizes=[10, 11, 10])
    found, features = store.lookup(wanted)
    assert found == {"a"}
    assert [(row.path, row.bytes) for row in features.collect()] == [("a", 10)]
    (Path(store.root.removeprefix("file:")) / "commits" / "zz.json").write_text('{"segm')
    assert store.committed_segments() == [segment]
    assert "ignoring unreadable commit" in caplog.text
    other = _store(spark, tmp_path, sha="1" * 64)
    assert other.lookup(wanted) == (set(), None)
