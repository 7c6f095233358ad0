# shellcheck shell=bash disable=SC2154  # $root and $venv: set by the sourcing script
# The project's settings for running Airflow on this machine, shared by scripts/demo.sh
# (`airflow dags test`) and scripts/airflow.sh (the scheduler, triggerer and UI). Sourced;
# needs $root (the checkout) and $venv.
#
# The Airflow settings the docker-compose stack also sets must agree with it:
# tests/infra/test_airflow_stack_settings.py compares `scripts/airflow.sh env` with
# docker-compose.yaml.

# SeaweedFS's dev key pair (scripts/local_s3.sh): not an AWS credential.
LOCAL_S3_ACCESS_KEY=fruits
LOCAL_S3_SECRET_KEY=fruits-secret

# export_local_settings AIRFLOW_HOME: Airflow with this checkout's dags/ and plugins/, and the
# DAG's settings (plugins/fruits_features/settings.py) for local use; FRUITS_* already set win.
export_local_settings() {
    export AIRFLOW_HOME=$1
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$1/airflow.db
    export AIRFLOW__CORE__DAGS_FOLDER=$root/dags
    export AIRFLOW__CORE__PLUGINS_FOLDER=$root/plugins
    export AIRFLOW__CORE__LOAD_EXAMPLES=false
    export AIRFLOW__CORE__EXECUTOR=LocalExecutor
    # The default (32) forks 32 task runners; with a Spark job in one of them, 4 is plenty.
    export AIRFLOW__CORE__PARALLELISM=${AIRFLOW__CORE__PARALLELISM:-4}
    export AIRFLOW__LOGGING__LOGGING_LEVEL=${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}
    export FRUITS_COMPUTE=${FRUITS_COMPUTE:-local}
    export FRUITS_AWS_CONN_ID=${FRUITS_AWS_CONN_ID:-aws_default}
    export FRUITS_BUCKET=${FRUITS_BUCKET:-fruits-features-local}
    export FRUITS_REGION=${FRUITS_REGION:-eu-west-1}
    export FRUITS_INPUT_PREFIX=${FRUITS_INPUT_PREFIX:-fruits-360}
    export FRUITS_LOCAL_SPARK_MASTER=${FRUITS_LOCAL_SPARK_MASTER:-local[2]}
    export FRUITS_PROJECT_DIR=$root
    export FRUITS_RESULTS_DIR=${FRUITS_RESULTS_DIR:-$root/results}
    # Spark's Python workers must run the venv's interpreter, not `python3` from PATH.
    export PYSPARK_PYTHON=$venv/bin/python
    export PYTHONPATH=$root/plugins${PYTHONPATH:+:$PYTHONPATH}
    export PATH=$venv/bin:$PATH
}

# local_s3_connection ENDPOINT: the aws_default connection to this checkout's SeaweedFS.
local_s3_connection() {
    printf '{"conn_type": "aws", "login": "%s", "password": "%s", "extra": {"region_name": "%s", "endpoint_url": "%s"}}' \
        "$LOCAL_S3_ACCESS_KEY" "$LOCAL_S3_SECRET_KEY" "${FRUITS_REGION:-eu-west-1}" "$1"
}
