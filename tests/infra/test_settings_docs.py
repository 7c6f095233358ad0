"""The README's settings tables are the settings themselves (config.settings_table)."""

from __future__ import annotations

from pathlib import Path

from fruits_features.settings import settings_table

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def test_readme_settings_tables_are_generated_from_the_fields():
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, f"README.md lacks the {START} ... {END} block"
    block = text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert block == settings_table(), (
        "README settings tables are out of date: regenerate them with "
        "`PYTHONPATH=plugins .venv/bin/python -m fruits_features.settings`"
    )


def test_readme_iam_policies_are_the_templates_rendered():
    from fruits_features.iam import readme_blocks
    from fruits_features.settings import build_config

    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- iam:start -->\n", 1)[1].split("<!-- iam:end -->", 1)[0]
    assert block == readme_blocks(build_config({})), (
        "README IAM policies are out of date: regenerate them with "
        "`PYTHONPATH=plugins .venv/bin/python -m fruits_features.iam --readme`"
    )
