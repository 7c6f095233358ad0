"""fruits_features: MobileNetV2 features + PCA over Fruits-360 images, on EMR or local Spark.

check_inputs -> upload_artifacts -> [EMR cluster segment | run_spark_locally]
-> download_outputs -> validate_outputs -> build_run_report, publish_pca.
Settings: plugins/fruits_features/config.py.
"""

from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator,
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.sdk import DAG, CronTriggerTimetable

from fruits_features.config import config_at_parse_time
from fruits_features.local_compute import run_spark_locally
from fruits_features.params import dag_params
from fruits_features.sensors import EmrStepWatchSensor
from fruits_features.tasks import (
    build_run_report,
    check_inputs,
    download_outputs,
    publish_pca,
    upload_artifacts,
    validate_outputs,
)

# Environment only: no Variable (database) access while the file is parsed.
CONFIG = config_at_parse_time()

with DAG(
    dag_id="fruits_features",
    description="MobileNetV2 features + PCA over Fruits-360 on EMR or local Spark",
    doc_md=__doc__,
    schedule=CronTriggerTimetable(CONFIG.schedule, timezone=CONFIG.schedule_timezone),
    start_date=pendulum.datetime(2025, 1, 1, tz=CONFIG.schedule_timezone),
    catchup=False,
    max_active_runs=1,
    params=dag_params(CONFIG),
    default_args={"owner": "fruits-features", "retries": 0},
    tags=["fruits-features", "spark", CONFIG.compute],
) as dag:
    plan = check_inputs(dag_compute=CONFIG.compute)
    uploaded = upload_artifacts(plan)

    if CONFIG.compute == "emr":
        # Every EMR operator talks to AWS as the run's plan says.
        aws = {"aws_conn_id": plan["aws_conn_id"], "region_name": plan["region"]}
        create_cluster = EmrCreateJobFlowOperator(
            task_id="create_cluster",
            job_flow_overrides=plan["cluster_spec"],
            emr_conn_id=None,
            **aws,
        )
        add_step = EmrAddStepsOperator(
            task_id="add_step",
            job_flow_id=create_cluster.output,
            steps=plan["steps"],
            **aws,
        )
        watch_step = EmrStepWatchSensor(
            task_id="watch_step",
            job_flow_id=create_cluster.output,
            step_id="{{ ti.xcom_pull(task_ids='add_step')[0] }}",
            watch=plan["watch"],
            mode="reschedule",
            **aws,
        )
        terminate_cluster = EmrTerminateJobFlowOperator(
            task_id="terminate_cluster",
            job_flow_id=create_cluster.output,
            **aws,
        )
        uploaded >> create_cluster >> add_step >> watch_step >> terminate_cluster
        terminate_cluster.as_teardown(setups=create_cluster)
        computed = watch_step
        # After the teardown: the report gives the cluster's whole wall time and cost.
        run_report = build_run_report(plan, cluster_id=create_cluster.output)
        terminate_cluster >> run_report
    else:
        computed = run_spark_locally(plan)
        uploaded >> computed
        run_report = build_run_report(plan)

    downloaded = download_outputs(plan)
    report = validate_outputs(plan)
    computed >> downloaded >> report >> run_report
    publish_pca(plan, report)
