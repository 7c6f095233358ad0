#!/usr/bin/env bash
# `make demo`: the DAG, in local compute mode, on the bundled sample images,
# against this checkout's local S3 server. Safe to run again: each run gets its own prefix,
# and a run over an unchanged sample is skipped (nothing changed) unless forced.
#
#   scripts/demo.sh [JSON run conf]      default: {"mode": "mini"}
#   scripts/demo.sh '{"mode": "mini", "force": true}'    run even if nothing changed
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
conf=${1:-'{"mode": "mini"}'}
# shellcheck source=scripts/local_settings.sh
source "$root/scripts/local_settings.sh"

# Airflow: a home of its own under var/, this checkout's dags/ and plugins/; local Spark.
mkdir -p "$root/var"
export FRUITS_COMPUTE=local
export_local_settings "$root/var/airflow"

step() { printf '\n== %s\n' "$*"; }

step "local S3 (SeaweedFS)"
"$root/scripts/local_s3.sh" start
# The aws_default connection points at this checkout's SeaweedFS (dev keys, not AWS credentials).
AIRFLOW_CONN_AWS_DEFAULT=$(local_s3_connection "$("$root/scripts/local_s3.sh" endpoint)")
export AIRFLOW_CONN_AWS_DEFAULT

step "Airflow metadata database ($AIRFLOW_HOME)"
airflow db migrate >"$root/var/airflow-db-migrate.log" 2>&1 ||
    { tail -20 "$root/var/airflow-db-migrate.log"; exit 1; }
echo "ready"

step "sample images -> s3://$FRUITS_BUCKET/$FRUITS_INPUT_PREFIX/"
python "$root/docker/seed_sample_data.py" --source "$root/sample_data/fruits-360" \
    --bucket "$FRUITS_BUCKET" --prefix "$FRUITS_INPUT_PREFIX"

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

if grep -q "Nothing changed since run" "$log"; then
    step "nothing changed since the last demo run: skipped, nothing started"
    echo "Its outputs are summarised below. To run anyway: scripts/demo.sh" \
        "'{\"mode\": \"mini\", \"force\": true}'"
fi

step "summary"
python -m fruits_features.summary "$FRUITS_RESULTS_DIR"
echo
echo "The local S3 server keeps running (the outputs stay browsable):" \
    "stop it with scripts/local_s3.sh stop (or make clean, which also deletes var/ and results/)."
