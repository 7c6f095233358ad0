"""fruits_features: MobileNetV2 features + PCA over Fruits-360 images, on EMR or local Spark.

check_inputs -> upload_artifacts -> [compute backend's tasks] -> download_outputs
-> validate_outputs -> build_run_report -> publish_pca; report_failure when a task failed.
Settings: plugins/fruits_features/config.py; compute backends: plugins/fruits_features/compute/.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable

from fruits_features.alert_callbacks import RunAlerts
from fruits_features.alerts import DAG_ID, Notifiers
from fruits_features.compute.registry import compute_backend
from fruits_features.params import dag_params
from fruits_features.settings import config_at_parse_time
from fruits_features.tasks import (
    build_run_report,
    check_inputs,
    download_outputs,
    publish_pca,
    report_failure,
    upload_artifacts,
    validate_outputs,
)

# Environment only: no Variable (database) access while the file is parsed.
CONFIG = config_at_parse_time()
COMPUTE = compute_backend(CONFIG.compute)
ALERTS = RunAlerts(Notifiers.from_config(CONFIG))

with DAG(
    dag_id=DAG_ID,
    description="MobileNetV2 features + PCA over Fruits-360 on EMR or local Spark",
    doc_md=__doc__,
    schedule=CronTriggerTimetable(CONFIG.runs.schedule, timezone=CONFIG.runs.schedule_timezone),
    start_date=pendulum.datetime(2025, 1, 1, tz=CONFIG.runs.schedule_timezone),
    catchup=False,
    max_active_runs=1,
    params=dag_params(CONFIG),
    # Each failed task records its error for the failure report and tells the notifiers.
    default_args={
        "owner": "fruits-features",
        "retries": 0,
        "on_failure_callback": ALERTS.on_task_failure,
    },
    tags=["fruits-features", "spark", CONFIG.compute],
) as dag:
    plan = check_inputs(dag_compute=CONFIG.compute)
    compute = COMPUTE.segment(plan)
    upload_artifacts(plan) >> compute.start

    downloaded = download_outputs(plan)
    compute.end >> downloaded
    valid = validate_outputs(plan)
    downloaded >> valid

    run_report = build_run_report(plan, compute=dict(compute.report_inputs))
    valid >> run_report
    if compute.done is not None:
        compute.done >> run_report
    # A night counts as its mode's last success (and the next unchanged one is skipped)
    # only once its report exists.
    published = publish_pca.override(on_success_callback=ALERTS.on_run_success)(plan, valid)
    run_report >> published
    # A failed run gets its report too: the failed task and the job's own error.
    [downloaded, valid, run_report, compute.end] >> report_failure()
