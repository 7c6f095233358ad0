#!/usr/bin/env bash
# `make demo`: the DAG, in local compute mode, on the bundled sample images,
# against a local S3 server. Safe to run again: each run gets its own prefix.
#
#   scripts/demo.sh [JSON run conf]      default: {"mode": "mini"}
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
conf=${1:-'{"mode": "mini"}'}
export PATH="$venv/bin:$PATH"

# Airflow: a home of its own under var/, this checkout's dags/ and plugins/.
export AIRFLOW_HOME=$root/var/airflow
export AIRFLOW__CORE__DAGS_FOLDER=$root/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$root/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__LOGGING__LOGGING_LEVEL=${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}
# The DAG's configuration (plugins/fruits_features/config.py): local Spark, local S3.
export FRUITS_COMPUTE=local
export FRUITS_BUCKET=${FRUITS_BUCKET:-fruits-features-local}
export FRUITS_REGION=${FRUITS_REGION:-eu-west-1}
export FRUITS_PROJECT_DIR=$root
export FRUITS_RESULTS_DIR=${FRUITS_RESULTS_DIR:-$root/results}
export PYSPARK_PYTHON=$venv/bin/python
export PYTHONPATH=$root/plugins${PYTHONPATH:+:$PYTHONPATH}
# The aws_default connection points at the local SeaweedFS (dev keys, not AWS credentials).
export AIRFLOW_CONN_AWS_DEFAULT='{"conn_type": "aws", "login": "fruits", "password": "fruits-secret",
  "extra": {"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:8333"}}'

step() { printf '\n== %s\n' "$*"; }

step "local S3 (SeaweedFS)"
"$root/scripts/local_s3.sh" start

step "Airflow metadata database ($AIRFLOW_HOME)"
airflow db migrate >"$root/var/airflow-db-migrate.log" 2>&1 ||
    { tail -20 "$root/var/airflow-db-migrate.log"; exit 1; }
echo "ready"

step "sample images -> s3://$FRUITS_BUCKET/fruits-360/"
python "$root/docker/seed_sample_data.py" --source "$root/sample_data/fruits-360" \
    --bucket "$FRUITS_BUCKET" --prefix fruits-360

step "airflow dags test fruits_features --conf '$conf'"
log=$root/var/last-demo.log
set +e
airflow dags test fruits_features --conf "$conf" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# `dags test` exits 0 even when a task failed; the final run state is in the log.
if [[ $status -ne 0 ]] || grep -q "state=failed\|DagRunState.FAILED" "$log"; then
    echo "demo: the DAG run failed; full log in $log" >&2
    exit 1
fi

step "summary"
python -m fruits_features.summary "$FRUITS_RESULTS_DIR"
