"""The report as a browser shows it: headless Chromium renders it, nothing is broken."""

from __future__ import annotations

import pytest

from fruits_features.report import build_report
from tests.report.browser import pixel_std, render
from tests.report.html_checks import embedded_pngs, external_references, parse
from tests.report.synthetic import EVIL_NAME, EVIL_REASON, write_run


def test_the_checks_catch_a_broken_page(tmp_path):
    # The checks below must be able to fail: a page with a broken image and a script error.
    page = tmp_path / "broken.html"
    page.write_text('<p>hi</p><img src="missing.png"><script>undefined_fn();</script>')
    rendered = render(page, tmp_path / "chromium")
    assert any("Uncaught" in line for line in rendered.console_problems())
    with pytest.raises(AssertionError, match="not embedded"):
        embedded_pngs(rendered.dom)
    assert external_references(rendered.dom) == ["<img src='missing.png'>", "<script>"]


def test_a_hostile_file_name_stays_text_in_the_browser(tmp_path):
    errors = [
        {"path": f"file:/data/Training/Kiwi/{EVIL_NAME}", "label": "Kiwi", "bytes": 3,
         "reason": EVIL_REASON},
    ]  # fmt: skip
    run = write_run(tmp_path / "run", ["Banana", "Kiwi"], errors=errors)
    rendered = render(build_report(run).html, tmp_path / "chromium")
    # The DOM as Chromium built it: only the three plots are images, no script appeared.
    assert len(embedded_pngs(rendered.dom)) == 3
    assert external_references(rendered.dom) == []
    assert not [tag for tag, _ in parse(rendered.dom).tags if tag == "script"]
    assert rendered.console_problems() == []
    assert pixel_std(rendered.screenshot) > 20


@pytest.mark.slow
def test_real_run_report_renders_complete(real_run, tmp_path_factory):
    work = tmp_path_factory.mktemp("browser")
    files = build_report(real_run, work / "report")
    rendered = render(files.html, work / "chromium")
    print(f"screenshot: {rendered.screenshot}")
    assert rendered.console_problems() == []
    assert external_references(rendered.dom) == []
    assert len(embedded_pngs(rendered.dom)) == len(files.plots) == 3
    # A blank or unstyled page is near-uniform; the report has text, tiles and plots.
    assert pixel_std(rendered.screenshot) > 20
