"""A user's run from the UI: the trigger form in headless Chromium, under the real scheduler.

Screenshots of the filled form and of the finished run are kept in build/test-artifacts/
(TEST_ARTIFACTS_DIR to put them elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from fruits_contract.engines import DEFAULT_ENGINE
from fruits_contract.modes import MODES
from fruits_features.params import dag_params
from fruits_features.settings import config_at_parse_time
from tests.airflow.scheduler.stack import DAG_ID
from tests.airflow.scheduler.trigger_form import TriggerForm, browser_page
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.long]


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("TEST_ARTIFACTS_DIR", REPO / "build" / "test-artifacts"))
    folder = folder / "trigger-form"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_trigger_form_shows_the_params_and_runs_mini(local_stack, artifacts):
    # The form as the dag-processor built it from the stack's environment.
    config = config_at_parse_time(local_stack.env)
    params = dag_params(config)
    local_stack.unpause()

    with browser_page() as page:
        form = TriggerForm.open(page, local_stack.base_url, DAG_ID)
        assert form.params() == {p.schema["title"]: p.description for p in params.values()}
        # Drop-downs show each value's label; the default mode is the scheduled one.
        assert MODES[config.runs.scheduled_mode].label in form.field_text("Mode")

        form.choose("Mode", MODES["mini"].label)
        form.fill_number("PCA components (K)", 5)
        form.fill_number("Image limit", 24)
        assert MODES["mini"].label in form.field_text("Mode")
        page.screenshot(path=artifacts / "trigger_form.png")
        print(f"screenshots: {artifacts}")
        created = form.submit()

        assert created["triggered_by"] == "ui"
        assert created["conf"] == {
            "mode": "mini",
            "pca_components": 5,
            "limit": 24,
            "engine": DEFAULT_ENGINE,
            "export_features": config.runs.export_features,
            "reuse_features": True,
            "force": False,
        }
        run_id = created["dag_run_id"]
        run = local_stack.wait_for_run(run_id, timeout=900)
        assert run["state"] == "success", local_stack.task_states(run_id)

        # The run's page says what the API says: the run and each of its tasks succeeded, but
        # the feature store's maintenance (a new store's first is a week away) and the
        # failure report (nothing failed): skipped.
        states = local_stack.task_states(run_id)
        assert states.pop("maintain_feature_store") == "skipped"
        assert states.pop("report_failure") == "skipped"
        assert set(states.values()) == {"success"}
        page.goto(f"{local_stack.base_url}/dags/{DAG_ID}/runs/{quote(run_id)}")
        expect(page.get_by_text(f"{len(states) + 2} Task Instances")).to_be_visible()
        expect(page.get_by_text("Success", exact=True)).to_have_count(1 + len(states))
        page.screenshot(path=artifacts / "finished_run.png")
