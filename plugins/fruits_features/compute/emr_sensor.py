"""EMR step sensor timed by the run plan, whose failure message says where the logs are."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.providers.amazon.aws.triggers.emr import EmrStepSensorTrigger
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from fruits_features.compute.emr_clusters import ACTIVE_STATES
from fruits_features.compute.emr_spec import step_log_uri

if TYPE_CHECKING:
    from airflow.sdk import Context


# Steps in these states have not ended: a trigger that stops on them has timed out.
STILL_GOING = ("PENDING", "CANCEL_PENDING", "RUNNING")
DEFERRAL_MARGIN_SECONDS = 120


class EmrStepWatchSensor(EmrStepSensor):
    """``EmrStepSensor`` configured at run time and explicit about failures.

    :param watch: ``{"poll_seconds", "timeout_seconds", "deferrable"}`` from the run plan
        (templated), so Airflow Variables apply without being read at parse time; a
        ``"skip"`` reason skips the task (a step the run did not add).

    On a failed step the error names the step, its state, EMR's failure details when EMR gives
    them, and the step's log folder ``<LogUri><cluster id>/steps/<step id>/``.
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
            self.defer(
                # The trigger gives up after its attempts and says so; the deferral's own
                # timeout only catches a trigger that died, so it must come later.
                timeout=timedelta(
                    seconds=self.max_attempts * self.poke_interval + DEFERRAL_MARGIN_SECONDS
                ),
                trigger=EmrStepSensorTrigger(
                    job_flow_id=self.job_flow_id,
                    step_id=self.step_id,
                    waiter_delay=int(self.poke_interval),
                    waiter_max_attempts=self.max_attempts,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
            )

    # The parent declares this a staticmethod; an instance method is needed to reach the
    # cluster's LogUri. ``EmrBaseSensor.poke`` calls it through ``self``.
    def failure_message_from_response(self, response: dict[str, Any]) -> str:  # type: ignore[override]
        return self._describe_failure(response["Step"])

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        if event and event.get("status") == "success":
            super().execute_complete(context, event)
            return
        # The trigger's event carries a waiter message only; ask EMR for the step itself.
        step = self.hook.conn.describe_step(ClusterId=self.job_flow_id, StepId=self.step_id)
        state = step["Step"]["Status"].get("State")
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
        message = (
            f"step {self.step_id} ({step.get('Name', '?')}) on cluster {self.job_flow_id} "
            f"is {status.get('State', '?')}: {reason}.{cluster_note} "
            f"Step logs (controller, stderr, stdout): {location}"
        )
        self.log.error("%s", message)
        return message

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
