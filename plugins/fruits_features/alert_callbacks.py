"""The run's callbacks: a failed task records its error (for the failure report) and tells
the notifiers; a successful run tells them when asked; an overdue job tells them once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fruits_features.alerts import Notifiers, failure_alert, success_alert
from fruits_features.plan import RunPlan

log = logging.getLogger(__name__)

# The XCom key of a failed task's record, read by the failure report.
FAILURE_XCOM = "failure"
PLAN_TASK = "check_inputs"


def run_plan(ti: Any) -> RunPlan | None:
    """The run's plan, if check_inputs made one."""
    data = ti.xcom_pull(task_ids=PLAN_TASK)
    return RunPlan.from_xcom(data) if data else None


def report_location(plan: RunPlan | None) -> str | None:
    if plan is None:
        return None
    return plan.layout.report_uri


def failure_record(task_id: str, error: BaseException | None) -> dict[str, str]:
    """What a failed task tells: its first line is the error, the rest an excerpt."""
    text = str(error).strip() if error else ""
    if not text:
        text = f"{type(error).__name__ if error else 'the task'} failed without a message"
    first, _, rest = text.partition("\n")
    return {"task": task_id, "error": first, "excerpt": rest.strip()}


@dataclass(frozen=True)
class RunAlerts:
    """The DAG's callbacks, holding the deployment's notifiers. Their settings are read when
    the DAG file is parsed (environment only): a failure caused by a bad Variable is still
    announced."""

    notifiers: Notifiers

    def on_task_failure(self, context: Mapping[str, Any]) -> None:
        """Every task's ``on_failure_callback`` (default_args). A task that fails because an
        upstream did is not run, so a failed run tells once, naming the task at fault."""
        announce_failure(self.notifiers, context)

    def on_run_success(self, context: Mapping[str, Any]) -> None:
        """The last task's ``on_success_callback``: tells the notifiers if asked to."""
        if self.notifiers.on_success:
            announce_success(self.notifiers, context)


def announce_failure(notifiers: Notifiers, context: Mapping[str, Any]) -> None:
    ti = context["ti"]
    record = failure_record(ti.task_id, context.get("exception"))
    try:
        ti.xcom_push(key=FAILURE_XCOM, value=record)
    except Exception:  # the alert matters more than the report's copy
        log.exception("Could not record the failure of %s for the report", ti.task_id)
    plan = run_plan(ti)
    mode = plan.params.mode if plan else (context.get("params") or {}).get("mode", "?")
    error = record["error"] + (f"\n{record['excerpt']}" if record["excerpt"] else "")
    alert = failure_alert(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        mode=mode,
        task_id=ti.task_id,
        error=error,
        report=report_location(plan),
    )
    notifiers.send(alert, context)


def announce_success(notifiers: Notifiers, context: Mapping[str, Any]) -> None:
    ti = context["ti"]
    plan = run_plan(ti)
    if plan is None:
        return
    summary = ti.xcom_pull(task_ids="validate_outputs") or {}
    shown = ", ".join(f"{k} {v}" for k, v in summary.items() if isinstance(v, int | float))
    alert = success_alert(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        mode=plan.params.mode,
        summary=shown or "outputs valid",
        report=report_location(plan) or "?",
    )
    notifiers.send(alert, context)
