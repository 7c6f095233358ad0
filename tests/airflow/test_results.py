"""The Airflow worker's copy of runs: what is downloaded, and how many runs are kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fruits_features.results import download_scope, prune_results
from fruits_features.run_params import RunParams
from fruits_features.settings import config_at_parse_time


@pytest.mark.parametrize(
    ("setting", "mode", "limit", "scope"),
    [
        # auto: a whole copy only of a run whose size is capped, whatever the bank's.
        ("auto", "full", None, "summary"),
        ("auto", "apples", None, "summary"),
        ("auto", "mini", None, "all"),
        ("auto", "full", 500, "all"),
        ("all", "full", None, "all"),
        ("summary", "mini", None, "summary"),
    ],
)
def test_download_scope(setting, mode, limit, scope):
    config = config_at_parse_time({"FRUITS_DOWNLOAD": setting})
    assert download_scope(config, RunParams(mode, 5, limit)) == scope


def test_a_bad_download_setting_is_refused_naming_it():
    with pytest.raises(ValueError, match="FRUITS_DOWNLOAD"):
        config_at_parse_time({"FRUITS_DOWNLOAD": "some"})
    with pytest.raises(ValueError, match="FRUITS_RESULTS_KEEP"):
        config_at_parse_time({"FRUITS_RESULTS_KEEP": "0"})


def _downloaded_run(mode_dir: Path, name: str, at: float) -> Path:
    folder = mode_dir / name
    (folder / "pca").mkdir(parents=True)
    (folder / "pca" / "part-0.parquet").write_bytes(b"x")
    source = folder / "_SOURCE"
    source.write_text(f"s3://b/runs/mini/{name}\n")
    os.utime(source, (at, at))
    return folder


def test_only_the_newest_downloaded_runs_are_kept(tmp_path):
    runs = [_downloaded_run(tmp_path, f"run{i}", 1_000_000 + i * 60) for i in range(5)]
    partial = tmp_path / "being-downloaded"  # no _SOURCE yet: not a finished copy
    partial.mkdir()
    (tmp_path / "notes.txt").write_text("mine")

    removed = prune_results(tmp_path, keep=2, current=runs[-1])

    assert sorted(removed) == runs[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "being-downloaded", "notes.txt", "run3", "run4",
    ]  # fmt: skip


def test_the_run_just_downloaded_is_never_removed(tmp_path):
    # A clock set back: the current run's marker looks oldest.
    current = _downloaded_run(tmp_path, "current", 1_000)
    newer = [_downloaded_run(tmp_path, f"run{i}", 2_000 + i) for i in range(2)]
    prune_results(tmp_path, keep=1, current=current)
    assert current.is_dir()
    assert [p.is_dir() for p in newer] == [False, True]


def test_links_stray_files_and_an_unremovable_folder_never_fail_the_pruning(
    tmp_path, monkeypatch, caplog
):
    """Pruning is best effort: a link a user made (to the latest run, or to a copy kept
    elsewhere) is not a run and is never followed, a stray file is left alone, and a folder
    that cannot be removed is named in a warning, not raised: the run is computed by then."""
    import shutil

    results = tmp_path / "results"
    old = _downloaded_run(results, "old", 1_000)
    locked = _downloaded_run(results, "locked", 1_500)
    current = _downloaded_run(results, "current", 3_000)
    kept_elsewhere = _downloaded_run(tmp_path / "archive", "2026-01-01", 500)
    (results / "latest").symlink_to(current, target_is_directory=True)
    (results / "archived").symlink_to(kept_elsewhere, target_is_directory=True)
    (results / "stray.txt").write_text("mine")
    rmtree = shutil.rmtree

    def refuse_locked(path, *args, **kwargs):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", refuse_locked)
    with caplog.at_level("WARNING"):
        removed = prune_results(results, keep=1, current=current)

    assert removed == [old]
    assert (results / "latest").is_symlink() and (current / "_SOURCE").is_file()
    assert (results / "archived").is_symlink() and (kept_elsewhere / "pca").is_dir()
    assert (results / "stray.txt").read_text() == "mine" and locked.is_dir()
    assert f"Could not remove the local copy of an older run {locked}" in caplog.text


def test_half_downloads_of_killed_tasks_are_removed(tmp_path):
    """A download lands in ``<run>.partial`` first; a task killed mid-way (SIGKILL, a lost
    worker) leaves it. One run of the DAG at a time: any other is a leftover."""
    current = _downloaded_run(tmp_path, "current", 3_000)
    left = tmp_path / "killed-run.partial"
    (left / "pca").mkdir(parents=True)
    (left / "pca" / "part-0.parquet").write_bytes(b"x")
    prune_results(tmp_path, keep=5, current=current)
    assert not left.exists() and current.is_dir()
