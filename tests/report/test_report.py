"""build_report and the CLI on hand-written run folders (fast, no Spark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from fruits_features.compute.emr_cost import EmrRunInfo, InstanceGroup, cost_section
from fruits_features.report import RunFolderError, build_report
from fruits_features.report.__main__ import main
from tests.conftest import REPO
from tests.report.html_checks import (
    embedded_pngs,
    external_references,
    parse,
    table_rows,
    visible_text,
)
from tests.report.synthetic import (
    EVIL_CLASS,
    EVIL_NAME,
    EVIL_REASON,
    SHA,
    class_names,
    write_run,
)


@pytest.fixture
def run(tmp_path):
    errors = [
        {"path": f"file:/data/Training/Kiwi/{EVIL_NAME}", "label": "Kiwi", "bytes": 12,
         "reason": EVIL_REASON},
        {"path": "file:/data/Training/Kiwi/empty.jpg", "label": "Kiwi", "bytes": 0,
         "reason": "empty file (0 bytes)"},
    ]  # fmt: skip
    return write_run(tmp_path / "run", ["Banana", "Kiwi", EVIL_CLASS], errors=errors)


def test_report_files_are_written_where_asked(run, tmp_path):
    files = build_report(run)
    assert files.html == run / "report" / "report.html"
    assert {p.name for p in files.plots} == {"explained_variance.png", "pca_map.png", "stages.png"}
    assert all(p.is_file() and p.stat().st_size > 1000 for p in files.plots)
    assert files.paths == (files.html, *files.plots, files.summary)
    assert files.summary.is_file()
    elsewhere = build_report(run, tmp_path / "elsewhere")
    assert elsewhere.html.parent == tmp_path / "elsewhere"


def test_locations_prefer_what_the_dag_knows_to_the_jobs_own_paths(run, tmp_path):
    def header(out, **kwargs):
        page = build_report(run, tmp_path / out, **kwargs).html.read_text()
        return visible_text(page.split("</header>")[0])

    own = header("own")
    assert "file:/data" in own and f"file:{run}" in own

    (run / "_SOURCE").write_text("s3://bucket/runs/mini/r1\n")
    known = header("known", input_uri="s3://bucket/fruits-360")
    assert "s3://bucket/fruits-360" in known and "s3://bucket/runs/mini/r1" in known
    assert "file:/data" not in known and f"file:{run}" not in known


def test_file_names_reasons_and_classes_are_escaped(run):
    page = build_report(run).html.read_text()
    tags = parse(page).tags
    # Nothing from the run became markup: no script, and the only <img> are the plots.
    assert not [t for t, _ in tags if t in ("script", "b")]
    assert len(embedded_pngs(page)) == 3
    assert external_references(page) == []
    text = visible_text(page)
    # ... but the reader still sees the names exactly as they are on disk.
    assert EVIL_NAME in text and EVIL_REASON in text and EVIL_CLASS in text
    assert "&lt;script&gt;" in page


def test_summary_and_page_agree_with_model_info(run):
    files = build_report(run)
    info = json.loads((run / "model_info" / "model_info.json").read_text())
    summary = json.loads(files.summary.read_text())
    text = visible_text(files.html.read_text())
    assert summary["counts"] == info["counts"] and summary["errors_listed"] == 2
    assert summary["knn"]["accuracy"] == 1.0  # well separated synthetic clusters
    assert f"{info['variance_kept']:.1%}" in text
    assert SHA in text and "synthetic-run" in text and "with errors (2)" in text
    assert "1 min 40 s" in text  # duration_seconds 100
    # The stage table: in run order, not model_info's (here scrambled) order.
    stages = table_rows(files.html.read_text(), "performance")
    assert [row[0] for row in stages] == ["stage", "list", "features", "pca"]
    assert stages[2][:2] == ["features", "10.0"]


def test_many_classes_keep_a_readable_map(tmp_path):
    classes = class_names(130)
    files = build_report(write_run(tmp_path / "run", classes, per_class=4, k=8))
    page = files.html.read_text()
    # The per-class table is the map's key: one numbered row, with its swatch, per class.
    swatches = [a for t, a in parse(page).tags if t == "span" and a.get("class") == "swatch"]
    assert len(swatches) == 130
    assert "130 ✖ Fruit 129" in visible_text(page)  # 130th class: 7th marker, 10th colour
    (map_png,) = (p for p in files.plots if p.name == "pca_map.png")
    assert map_png.stat().st_size > 20_000


def test_an_older_run_without_optional_files_still_reports(tmp_path):
    run = write_run(tmp_path / "run", ["Banana", "Kiwi"], old=True)
    files = build_report(run)
    text = visible_text(files.html.read_text())
    assert "No stage timings recorded" in text and "No versions recorded" in text
    # Variance comes from variance.csv when model_info has no lists.
    assert {p.name for p in files.plots} == {"explained_variance.png", "pca_map.png"}
    assert "OK" in text


def test_not_reached_targets_are_said_so(tmp_path):
    run = write_run(tmp_path / "run", ["Banana", "Kiwi"], k=3)  # 3 of 12 components
    summary = json.loads(build_report(run).summary.read_text())
    text = visible_text((run / "report" / "report.html").read_text())
    assert summary["components_needed"]["95%"] is None
    assert "not reached with K=3" in text


def test_emr_section_shows_cluster_and_estimated_cost(run):
    created = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    emr = EmrRunInfo(
        "j-1K48XXXXXXHCB",
        (InstanceGroup("MASTER", "m5.2xlarge", 1), InstanceGroup("CORE", "m5.2xlarge", 2)),
        created,
        created + timedelta(minutes=40),
    )
    files = build_report(run, compute=cost_section(emr, {"m5.2xlarge": 0.6}))
    text = visible_text(files.html.read_text())
    assert "j-1K48XXXXXXHCB" in text and "40 min 00 s" in text
    assert "$1.20" in text  # 40/60 h × 3 × $0.60
    assert json.loads(files.summary.read_text())["emr"]["total_usd"] == pytest.approx(1.2)
    no_emr = visible_text(build_report(run).html.read_text())
    assert "EMR cluster" not in no_emr


def test_cli_prints_the_report_path(run, tmp_path, capsys):
    assert main([str(run), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "report.html")
    assert main([str(tmp_path)]) == 2
    assert "not a run output folder" in capsys.readouterr().err


def test_cli_runs_as_a_module_without_spark(run):
    # -X importtime would be overkill: a poisoned pyspark proves it is never imported.
    code = (
        "import sys; sys.modules['pyspark'] = None; sys.modules['fruits_job'] = None\n"
        "from fruits_features.report.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(run)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "plugins")},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(run / "report" / "report.html")


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RunFolderError):
        build_report(tmp_path)


def test_class_names_are_drawn_as_text_not_math(tmp_path):
    """A folder name is text in the plots too: between two dollar signs matplotlib would
    parse mathtext (and fail the report on ``\\frac``); the legend shows it as written."""
    classes = ["Apple $\\frac{1}{$", "Pear $5 and $6", "Kiwi"]
    files = build_report(write_run(tmp_path / "run", classes, per_class=4, k=3))
    assert any(p.name == "pca_map.png" for p in files.plots)
    text = visible_text(files.html.read_text())
    assert all(name in text for name in classes)
