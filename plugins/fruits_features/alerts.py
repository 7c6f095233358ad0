"""Who is told when a run fails, succeeds or overruns, and what the message says.

Alerts go through Airflow's notifier interface: Amazon SNS with the provider's
``SnsNotifier`` when ``FRUITS_ALERT_SNS_TOPIC_ARN`` is set, and any notifier class a user
installs (Apprise, Slack, a webhook...) named by ``FRUITS_ALERT_NOTIFIER``. The settings are
read from the environment when the DAG file is parsed: an alert must still go out when the
run fails on a bad Variable.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator

from fruits_features.config import (
    ConfigError,
    PipelineConfig,
    SettingsGroup,
    matching,
    setting,
)

log = logging.getLogger(__name__)

# SNS refuses a subject over 100 characters, or one with a line break.
SUBJECT_MAX = 100
DAG_ID = "fruits_features"
# The derived deadline: a cluster's start (~10 min on EMR), the images at the expected rate
# (the reference cluster did 13.6 images/s; this job is faster), and a margin.
DEADLINE_START_SECONDS = 600
DEADLINE_MARGIN = 1.5
# An alert carries the error and a short excerpt; the full log is one link away.
ERROR_MAX = 2000


SNS_TOPIC_ARN = r"(arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256})?"


def _notifier_kwargs(value: str) -> str:
    try:
        parsed = json.loads(value or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f"expected a JSON object ({error})") from None
    if not isinstance(parsed, dict):
        raise ValueError('expected a JSON object such as \'{"body": "{message}"}\'')
    return value


class AlertSettings(SettingsGroup):
    title: ClassVar[str] = "Alerts and deadlines"

    alert_sns_topic_arn: Annotated[str, matching(SNS_TOPIC_ARN, "an SNS topic ARN")] = setting(
        "",
        "SNS topic told of every failed run (the provider's `SnsNotifier`, through "
        "`FRUITS_AWS_CONN_ID`); empty: no SNS alert",
        parse_time=True,
    )
    alert_notifier: Annotated[
        str, matching(r"([A-Za-z_][\w.]*\.[A-Za-z_]\w*)?", "a dotted class path")
    ] = setting(
        "",
        "another notifier class to tell, e.g. "
        "`airflow.providers.apprise.notifications.apprise.AppriseNotifier`",
        parse_time=True,
    )
    alert_notifier_kwargs: Annotated[str, AfterValidator(_notifier_kwargs)] = setting(
        "{}",
        "its keyword arguments (JSON); `{message}` and `{subject}` in a string value are "
        'replaced by the alert\'s, e.g. `{"body": "{message}", "title": "{subject}"}`',
        parse_time=True,
    )
    alert_on_success: bool = setting(
        False, "also tell the notifiers of each successful run", parse_time=True
    )
    deadline_seconds: int = setting(
        0,
        "a job still running this long after its start is announced (it goes on until "
        "`FRUITS_STEP_TIMEOUT_SECONDS`); 0: derived from the run's planned images",
        ge=0,
    )
    deadline_images_per_second: float = setting(
        20.0,
        "the rate the derived deadline expects: "
        f"{DEADLINE_MARGIN} x ({DEADLINE_START_SECONDS} s + planned images / rate)",
        gt=0,
    )


def job_deadline(
    settings: AlertSettings, planned_images: int, timeout_seconds: int
) -> dict[str, Any] | None:
    """When a job is overdue: ``{"seconds", "timeout_seconds", "why"}``, or None when that
    would not come before its timeout (the timeout's failure tells then). Measured from the
    job's start: the EMR cluster's creation, the local spark-submit's start."""
    if settings.deadline_seconds:
        seconds, why = settings.deadline_seconds, "FRUITS_DEADLINE_SECONDS"
    else:
        rate = settings.deadline_images_per_second
        seconds = round(DEADLINE_MARGIN * (DEADLINE_START_SECONDS + planned_images / rate))
        why = f"{planned_images} planned images at {rate:g}/s, start and margin included"
    if seconds >= timeout_seconds:
        return None
    return {"seconds": seconds, "timeout_seconds": timeout_seconds, "why": why}


@dataclass(frozen=True)
class Alert:
    subject: str
    message: str


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _subject(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= SUBJECT_MAX else line[: SUBJECT_MAX - 1] + "…"


def failure_alert(
    *, dag_id: str, run_id: str, mode: str, task_id: str, error: str, report: str | None
) -> Alert:
    """The message of a failed task: the run, its mode, the task, the error, the report."""
    error = error.strip() or "no error message"
    if len(error) > ERROR_MAX:
        error = error[:ERROR_MAX] + "\n[... cut: the task's log has all of it]"
    return Alert(
        subject=_subject(f"[{dag_id}] {mode} run failed in {task_id}"),
        message="\n".join(
            [
                f"Run {run_id} of {dag_id} (mode {mode}) failed in task {task_id}.",
                "",
                f"Error: {error}",
                "",
                f"Report: {report or 'none (the run failed before its plan was made)'}",
            ]
        ),
    )


def deadline_alert(
    *, dag_id: str, run_id: str, mode: str, elapsed_seconds: float, deadline: Mapping[str, Any]
) -> Alert:
    """The message of a run past its deadline, still running until its timeout."""
    return Alert(
        subject=_subject(f"[{dag_id}] {mode} run past its deadline"),
        message=(
            f"Run {run_id} of {dag_id} (mode {mode}) has been running its job for "
            f"{_duration(elapsed_seconds)}, past its deadline of "
            f"{_duration(deadline['seconds'])} ({deadline['why']}). It goes on until its "
            f"timeout of {_duration(deadline['timeout_seconds'])}, then is stopped and its "
            "cluster terminated."
        ),
    )


def announce_overdue(deadline: Mapping[str, Any], elapsed_seconds: float) -> int:
    """Tell the run's notifiers its job is past its deadline (the run plan's ``deadline``:
    ``job_deadline``'s, with the run's id, mode and notifiers)."""
    alert = deadline_alert(
        dag_id=deadline["dag_id"],
        run_id=deadline["run_id"],
        mode=deadline["mode"],
        elapsed_seconds=elapsed_seconds,
        deadline=deadline,
    )
    log.warning("%s", alert.message)
    return Notifiers(**deadline["notifiers"]).send(alert)


def success_alert(*, dag_id: str, run_id: str, mode: str, summary: str, report: str) -> Alert:
    return Alert(
        subject=_subject(f"[{dag_id}] {mode} run succeeded"),
        message=f"Run {run_id} of {dag_id} (mode {mode}) succeeded: {summary}.\n\nReport: {report}",
    )


def _fill(value: Any, alert: Alert) -> Any:
    if isinstance(value, str):
        return value.replace("{message}", alert.message).replace("{subject}", alert.subject)
    if isinstance(value, dict):
        return {k: _fill(v, alert) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, alert) for v in value]
    return value


@dataclass(frozen=True)
class Notifiers:
    """The deployment's notifiers, as its settings name them."""

    sns_topic_arn: str = ""
    aws_conn_id: str | None = None
    region: str | None = None
    notifier: str = ""
    notifier_kwargs: str = "{}"
    on_success: bool = False

    @classmethod
    def from_config(cls, config: PipelineConfig) -> Notifiers:
        settings: AlertSettings = config.group(AlertSettings)
        return cls(
            sns_topic_arn=settings.alert_sns_topic_arn,
            aws_conn_id=config.storage.aws_conn_id,
            region=config.storage.region,
            notifier=settings.alert_notifier,
            notifier_kwargs=settings.alert_notifier_kwargs,
            on_success=settings.alert_on_success,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def notifier_class(self) -> type:
        """The class FRUITS_ALERT_NOTIFIER names (checked when the DAG file is parsed)."""
        module, _, name = self.notifier.rpartition(".")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            raise ConfigError(
                f"bad FRUITS_ALERT_NOTIFIER: {self.notifier!r} cannot be imported ({error}); "
                "install its provider or fix the path"
            ) from None

    def build(self, alert: Alert) -> list[Any]:
        """One notifier instance per destination, holding this alert."""
        built: list[Any] = []
        if self.sns_topic_arn:
            from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

            built.append(
                SnsNotifier(
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region,
                    target_arn=self.sns_topic_arn,
                    subject=alert.subject,
                    message=alert.message,
                )
            )
        if self.notifier:
            kwargs = _fill(json.loads(self.notifier_kwargs), alert)
            built.append(self.notifier_class()(**kwargs))
        return built

    def send(self, alert: Alert, context: Mapping[str, Any] | None = None) -> int:
        """Send the alert to every notifier; how many took it. A notifier that fails is
        logged and does not stop the others (nor change the run's state)."""
        sent = 0
        try:
            notifiers = self.build(alert)
        except Exception:
            log.exception("Alert %r not sent: its notifiers could not be made", alert.subject)
            return 0
        for notifier in notifiers:
            try:
                # notify(), not __call__: the message is text, not a Jinja template (an
                # error line may hold "{{").
                notifier.notify(dict(context or {}))
                sent += 1
            except Exception:
                log.exception("Alert %r not sent by %s", alert.subject, type(notifier).__name__)
        if sent:
            log.info("Alert sent to %d notifier(s): %s", sent, alert.subject)
        return sent
