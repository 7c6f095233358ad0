"""EMR step sensor timed by the run plan: it announces an overdue job, and on a failed step
quotes the job's own error from the step's log."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.providers.amazon.aws.triggers.emr import EmrStepSensorTrigger
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from fruits_features.alerts import announce_overdue
from fruits_features.compute.emr_clusters import ACTIVE_STATES
from fruits_features.compute.emr_spec import step_log_uri
from fruits_features.s3 import RunS3Hook
from fruits_features.s3_layout import split_s3_uri
from fruits_features.step_logs import StepError, read_step_log, step_error

if TYPE_CHECKING:
    from airflow.sdk import Context


# Steps in these states have not ended: a trigger that stops on them has timed out.
STILL_GOING = ("PENDING", "CANCEL_PENDING", "RUNNING")
DEFERRAL_MARGIN_SECONDS = 120


class EmrStepWatchSensor(EmrStepSensor):
    """``EmrStepSensor`` configured at run time and explicit about failures.

    :param watch: ``{"poll_seconds", "timeout_seconds", "deferrable", "log_wait_seconds",
        "deadline"}`` from the run plan (templated), so Airflow Variables apply without being
        read at parse time; a ``"skip"`` reason skips the task (a step the run did not add).

    Past the plan's deadline (from the cluster's creation), the job is announced overdue once
    per run (a conditional write on S3 decides which poke does it), and watched on until the
    timeout. On a failed step the error names the step, its state, the job's own error line
    from the step's ``stderr.gz`` (waiting up to ``log_wait_seconds`` for EMR to push it),
    EMR's failure details, and the step's log folder; the excerpt of the log that explains
    the error follows in the task log.
    """

    template_fields: Sequence[str] = (*EmrStepSensor.template_fields, "watch")

    def __init__(self, *, watch: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watch = watch

    def _apply_watch(self) -> None:
        if not self.watch:
            return
        self.poke_interval = float(self.watch["poll_seconds"])
        self.timeout = float(self.watch["timeout_seconds"])
        # The deferrable path bounds itself by attempts, the poking path by ``timeout``.
        self.max_attempts = max(1, math.ceil(self.timeout / self.poke_interval))
        self.deferrable = bool(self.watch["deferrable"])

    @property
    def deadline(self) -> Mapping[str, Any] | None:
        return (self.watch or {}).get("deadline")

    def execute(self, context: Context) -> None:
        if self.watch and self.watch.get("skip"):
            raise AirflowSkipException(f"no step to watch: {self.watch['skip']}")
        self._apply_watch()
        self.log.info(
            "Watching step %s of cluster %s every %.0f s for at most %.0f s (%s)",
            self.step_id,
            self.job_flow_id,
            self.poke_interval,
            self.timeout,
            "deferrable" if self.deferrable else self.mode,
        )
        if not self.deferrable:
            super().execute(context)
        elif not self.poke(context):
            self._defer(self.timeout)

    def poke(self, context: Context) -> bool:
        done = super().poke(context)
        if not done:
            self._check_deadline()
        return done

    def _defer(self, seconds: float) -> None:
        """Hand the wait to the triggerer for ``seconds`` at most, or until the deadline when
        it comes first (the task resumes then to announce it, and defers again)."""
        if self.deadline and not self._announced:
            until_deadline = self.deadline["seconds"] - self._elapsed()
            seconds = min(seconds, max(until_deadline, self.poke_interval))
        # The waiter sleeps between attempts: n attempts span (n - 1) intervals.
        attempts = max(1, math.ceil(seconds / self.poke_interval) + 1)
        self.defer(
            # The trigger gives up after its attempts and says so; the deferral's own
            # timeout only catches a trigger that died, so it must come later.
            timeout=timedelta(seconds=attempts * self.poke_interval + DEFERRAL_MARGIN_SECONDS),
            trigger=EmrStepSensorTrigger(
                job_flow_id=self.job_flow_id,
                step_id=self.step_id,
                waiter_delay=int(self.poke_interval),
                waiter_max_attempts=attempts,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
        )

    # Per task process: a resumed or rescheduled sensor is a new instance (the marker on S3
    # is what makes the announcement once per run).
    _announced = False
    _created: datetime | None = None

    def _elapsed(self) -> float:
        """Seconds since the run's cluster was created: the job's clock, whatever the
        sensor's pokes, reschedules and deferrals."""
        if self._created is None:
            cluster = self.hook.conn.describe_cluster(ClusterId=self.job_flow_id)["Cluster"]
            self._created = cluster["Status"]["Timeline"]["CreationDateTime"]
        return (datetime.now(tz=UTC) - self._created).total_seconds()

    def _check_deadline(self) -> None:
        """Announce the job overdue, once per run: the poke that creates the marker does."""
        deadline = self.deadline
        if not deadline or self._announced:
            return
        elapsed = self._elapsed()
        if elapsed < deadline["seconds"]:
            return
        self._announced = True
        bucket, key = split_s3_uri(deadline["marker"])
        marker = json.dumps({"elapsed_seconds": round(elapsed), "step_id": self.step_id})
        s3 = RunS3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        if s3.create_text(bucket, key, marker):
            announce_overdue(deadline, elapsed)

    # The parent declares this a staticmethod; an instance method is needed to reach the
    # cluster's LogUri. ``EmrBaseSensor.poke`` calls it through ``self``.
    def failure_message_from_response(self, response: dict[str, Any]) -> str:  # type: ignore[override]
        return self._describe_failure(response["Step"])

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        if event and event.get("status") == "success":
            super().execute_complete(context, event)
            return
        self._apply_watch()  # a resumed task is a new instance: the plan's timing again
        # The trigger's event carries a waiter message only; ask EMR for the step itself.
        step = self.hook.conn.describe_step(ClusterId=self.job_flow_id, StepId=self.step_id)
        state = step["Step"]["Status"].get("State")
        if state in STILL_GOING and self.deadline and self._elapsed() < self.timeout:
            # Resumed at the deadline: announce it, then wait on until the timeout.
            self._check_deadline()
            self._defer(self.timeout - self._elapsed())
        if state in STILL_GOING:
            raise AirflowSensorTimeout(
                f"gave up waiting for step {self.step_id} on cluster {self.job_flow_id}: still "
                f"{state} after {self.timeout:.0f} s (FRUITS_STEP_TIMEOUT_SECONDS)"
            )
        raise AirflowException(f"EMR job failed: {self._describe_failure(step['Step'])}")

    def _describe_failure(self, step: Mapping[str, Any]) -> str:
        status = step.get("Status", {})
        details = status.get("FailureDetails") or {}
        if details:
            reason = (
                f"{details.get('Reason') or 'no reason given'}"
                f" ({details.get('Message') or 'no message'}; log file {details.get('LogFile')})"
            )
        else:
            change = (status.get("StateChangeReason") or {}).get("Message")
            reason = change or "EMR gave no failure details"
        location, cluster_note = self._cluster_context()
        error = self._job_error(location) if status.get("State") == "FAILED" else None
        if error is not None:
            reason = f"{error.line} (EMR: {reason})"
        message = (
            f"step {self.step_id} ({step.get('Name', '?')}) on cluster {self.job_flow_id} "
            f"is {status.get('State', '?')}: {reason}.{cluster_note} "
            f"Step logs (controller, stderr, stdout): {location}"
        )
        self.log.error("%s", message)
        if error is not None and error.excerpt:
            self.log.error("The job's error, from its stderr.gz:\n%s", error.text())
            message += "\n" + error.text()
        return message

    def _job_error(self, location: str) -> StepError | None:
        """The job's own error from the step's stderr.gz, waiting (bounded) for EMR to push
        it; None, with a line saying why, when it cannot be had."""
        if not location.startswith("s3://"):
            return None
        wait = float((self.watch or {}).get("log_wait_seconds", 0))
        try:
            s3 = RunS3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
            lines = read_step_log(s3.conn, location, wait_seconds=wait)
        except Exception as error:  # the failure itself matters more than its log
            self.log.warning("Could not read the step's log %sstderr.gz: %s", location, error)
            return None
        if lines is None:
            self.log.warning(
                "EMR had not pushed the step's log to %sstderr.gz after %.0f s "
                "(FRUITS_STEP_LOG_WAIT_SECONDS): the job's error is there once it does",
                location,
                wait,
            )
            return None
        return step_error(lines)

    def _cluster_context(self) -> tuple[str, str]:
        """The step's log folder, and the cluster's state when it explains the failure."""
        try:
            cluster = self.hook.conn.describe_cluster(ClusterId=self.job_flow_id)["Cluster"]
        except Exception as error:  # the failure itself matters more than its context
            self.log.warning("Could not describe cluster %s: %s", self.job_flow_id, error)
            return "unknown (describe_cluster failed)", ""
        status = cluster.get("Status", {})
        note = ""
        # A step is CANCELLED when its cluster dies first, e.g. on a bootstrap failure.
        if status.get("State") not in ACTIVE_STATES:
            change = status.get("StateChangeReason") or {}
            why = " ".join(filter(None, (change.get("Code"), change.get("Message"))))
            note = f" Cluster {status.get('State', '?')}: {why or 'no reason given'}."
        log_uri = cluster.get("LogUri")
        if not log_uri:
            return "unknown (the cluster has no LogUri)", note
        # EMR reports s3n://; s3:// is what `aws s3 ls` and the console take.
        log_uri = re.sub(r"^s3[na]?://", "s3://", log_uri)
        return step_log_uri(log_uri, self.job_flow_id, self.step_id), note
