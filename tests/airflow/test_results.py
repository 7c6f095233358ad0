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
