"""The Airflow 3.3 UI's trigger form, driven by Playwright in Debian's Chromium (no browser
download: `playwright install` is never needed).

Selectors are roles, accessible names and test ids, the ones the UI keeps stable (generated
element ids change between renders). The UI's strings come from its English locale.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Locator, Page, expect, sync_playwright

from tests.conftest import require_tool

# Nothing may leave the machine: no updates, sync, QUIC or background fetches.
CHROMIUM_ARGS = (
    "--no-sandbox",  # runs as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@contextmanager
def browser_page() -> Iterator[Page]:
    """A page of headless Chromium, in English (the UI's translations follow the locale)."""
    chromium = require_tool("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100}, locale="en-US")
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


class TriggerForm:
    """The "Trigger Dag" dialog of one DAG."""

    def __init__(self, page: Page, dialog: Locator) -> None:
        self.page = page
        self.dialog = dialog

    @classmethod
    def open(cls, page: Page, base_url: str, dag_id: str) -> TriggerForm:
        page.goto(f"{base_url}/dags/{dag_id}")
        # The button's name is translated once the UI's strings have loaded.
        page.get_by_role("button", name="Trigger Dag").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("heading", name=f"Trigger Dag - {dag_id}")).to_be_visible()
        return cls(page, dialog)

    def params(self) -> dict[str, str]:
        """{label: help text} of each run parameter, in the order shown."""
        rows = self.dialog.get_by_role("group").filter(has=self.page.locator("label"))
        expect(
            rows.filter(has=self.page.locator('[data-part="helper-text"]')).first
        ).to_be_visible()
        shown: dict[str, str] = {}
        for i in range(rows.count()):
            row = rows.nth(i)
            helper = row.locator('[data-part="helper-text"]')
            if helper.count():  # the form's own fields (Logical Date) have no help text
                label = row.locator("label").first.inner_text().replace("*", "").strip()
                shown[label] = helper.first.inner_text().strip()
        return shown

    def field_text(self, label: str) -> str:
        """What the row of a drop-down shows: label, chosen option, help text."""
        # A filter's locator is relative to each group, so it starts at the page.
        combobox = self.page.get_by_role("combobox", name=label, exact=True)
        return self.dialog.get_by_role("group").filter(has=combobox).inner_text()

    def choose(self, label: str, option: str) -> None:
        self.dialog.get_by_role("combobox", name=label, exact=True).click()
        self.page.get_by_role("option", name=option, exact=True).click()

    def fill_number(self, label: str, value: int) -> None:
        field = self.dialog.get_by_role("spinbutton", name=label, exact=True)
        field.fill(str(value))
        field.blur()

    def submit(self) -> dict[str, Any]:
        """Click Trigger; the run the API created (the UI's POST must succeed)."""
        with self.page.expect_response(
            lambda r: r.url.endswith("/dagRuns") and r.request.method == "POST"
        ) as answer:
            self.dialog.get_by_test_id("trigger-dag-submit").click()
        response = answer.value
        assert response.status == 200, response.text()
        return response.json()
