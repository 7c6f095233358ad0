#!/usr/bin/env bash
# `make airflow`: Airflow as a user runs it, without Docker: the api-server (UI and REST API),
# scheduler (LocalExecutor), dag-processor and triggerer as separate processes on SQLite, with
# this checkout's local settings (scripts/local_settings.sh) and, unless you give your own
# AWS connection, this checkout's local S3 with the sample images.
#
#   scripts/airflow.sh start    start what is not running; returns once the UI answers
#   scripts/airflow.sh stop     stop exactly what start started (the local S3 too, if it did)
#   scripts/airflow.sh status   what runs, and where
#   scripts/airflow.sh env      the stack's settings (secrets masked)
#
#   AIRFLOW_PORT               port of the UI/API on 127.0.0.1 (default 8080, or a free one
#                              if 8080 is taken; a port you name is never replaced)
#   AIRFLOW_CONN_AWS_DEFAULT   your own connection (e.g. real AWS): no local S3, no upload
#   FRUITS_*                   the DAG's settings (README), e.g. FRUITS_COMPUTE=emr
#   VAR_DIR                    where the stack keeps its state (default: var/)
#
# State under $VAR_DIR/airflow-stack/: home/ (AIRFLOW_HOME: database, task logs),
# logs/<component>.log, pids/<component>.pid, port, secrets.env.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
var=${VAR_DIR:-$root/var}
state=$var/airflow-stack
home=$state/home
dag_id=fruits_features
components=(api-server dag-processor triggerer scheduler)
export SEAWEED_DIR=${SEAWEED_DIR:-$var/seaweedfs}
# shellcheck source=scripts/processes.sh
source "$root/scripts/processes.sh"
# shellcheck source=scripts/local_settings.sh
source "$root/scripts/local_settings.sh"

pidfile() { echo "$state/pids/$1.pid"; }
url() { echo "http://127.0.0.1:$(cat "$state/port")"; }

running=()
stopped=()
survey() {
    running=()
    stopped=()
    local c
    for c in "${components[@]}"; do
        if recorded_alive "$(pidfile "$c")"; then running+=("$c"); else stopped+=("$c"); fi
    done
}

# The settings of every component; the port is this stack's.
stack_settings() {
    export_local_settings "$home"
    export AIRFLOW__API__HOST=127.0.0.1
    export AIRFLOW__API__PORT=$1
    # Task processes report to the api-server; by default they would look on :8080.
    export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$1/execution/
    export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=true
    # Local use: no login page, everyone reaching 127.0.0.1:$1 is admin.
    export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=true
    export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=30
    # The scheduler's health server and the log servers would listen on fixed ports of every
    # interface; the api-server reads the task logs from the shared home instead.
    export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=false
    # Every component must sign and check task tokens with the same secret: one per checkout.
    if [[ -f $state/secrets.env ]]; then
        # shellcheck source=/dev/null
        source "$state/secrets.env"
    fi
    export AIRFLOW__API_AUTH__JWT_SECRET=${AIRFLOW__API_AUTH__JWT_SECRET:-<made by start>}
    export AIRFLOW__API__SECRET_KEY=${AIRFLOW__API__SECRET_KEY:-<made by start>}
    export AIRFLOW__CORE__FERNET_KEY=${AIRFLOW__CORE__FERNET_KEY:-<made by start>}
}

make_secrets() {
    [[ -f $state/secrets.env ]] && return 0
    (
        umask 077
        "$venv/bin/python" - >"$state/secrets.env" <<'EOF'
import secrets
from cryptography.fernet import Fernet
print(f"AIRFLOW__API_AUTH__JWT_SECRET={secrets.token_hex(32)}")
print(f"AIRFLOW__API__SECRET_KEY={secrets.token_hex(32)}")
print(f"AIRFLOW__CORE__FERNET_KEY={Fernet.generate_key().decode()}")
EOF
    )
}

choose_port() {
    if [[ -n ${AIRFLOW_PORT:-} ]]; then
        if ! port_free "$AIRFLOW_PORT"; then
            echo "airflow: port $AIRFLOW_PORT is taken; choose another, e.g." \
                "make airflow AIRFLOW_PORT=$(free_port 0)" >&2
            return 1
        fi
        echo "$AIRFLOW_PORT"
    elif port_free 8080; then
        echo 8080
    else
        local port
        port=$(free_port 0)
        echo "airflow: port 8080 is taken, using $port (set AIRFLOW_PORT to choose)" >&2
        echo "$port"
    fi
}

# health: "ok" once every component heartbeats and the DAG is loaded, else what is missing.
health() {
    "$venv/bin/python" - "$(url)" "$dag_id" <<'EOF'
import json, sys, urllib.request
base, dag_id = sys.argv[1:]
def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None
    except (OSError, ValueError):
        return None, None
status, body = get("/api/v2/monitor/health")
if status != 200:
    sys.exit(print("the api-server does not answer yet"))
waiting = [name for name, part in body.items() if (part or {}).get("status") != "healthy"]
if waiting:
    sys.exit(print("waiting for " + ", ".join(waiting)))
status, _ = get(f"/api/v2/dags/{dag_id}")
if status == 200:
    sys.exit(print("ok"))
_, errors = get("/api/v2/importErrors")
for error in (errors or {}).get("import_errors", []):
    print(f"IMPORT ERROR in {error['filename']}:\n{error['stack_trace']}")
    sys.exit()
print(f"waiting for the dag-processor to load {dag_id}")
EOF
}

print_summary() {
    local base
    base=$(url)
    cat <<EOF

Airflow UI: $base  (no login: local use only, every visitor is admin)
REST API:   $base/api/v2  e.g.
  curl -X POST $base/api/v2/dags/$dag_id/dagRuns -H 'Content-Type: application/json' \\
       -d '{"logical_date": null, "conf": {"mode": "mini"}}'
Compute:    FRUITS_COMPUTE=$FRUITS_COMPUTE, bucket s3://$FRUITS_BUCKET
The DAG starts paused. Unpausing it starts the latest nightly run at once (mode
$(scheduled_mode)), then one a night; a triggered run waits until it is unpaused.
Logs: $state/logs/   Task logs: $home/logs/   Stop: make airflow-stop
EOF
}

scheduled_mode() { echo "${FRUITS_SCHEDULED_MODE:-full}"; }

# stop_components NAME...: stop these components side by side.
stop_components() {
    local c jobs=() failed=0
    for c in "$@"; do
        recorded_alive "$(pidfile "$c")" || continue
        (stop_recorded "$(pidfile "$c")" "$c" 10 && echo "airflow: $c stopped") &
        jobs+=("$!")
    done
    for c in "${jobs[@]}"; do wait "$c" || failed=1; done
    return "$failed"
}

stop_stack() {
    local failed=0
    # The api-server last: running tasks report to it while they shut down.
    stop_components scheduler triggerer dag-processor || failed=1
    stop_components api-server || failed=1
    if [[ -f $state/started-s3 ]]; then
        "$root/scripts/local_s3.sh" stop
        rm -f "$state/started-s3"
    elif "$root/scripts/local_s3.sh" status >/dev/null 2>&1; then
        echo "local S3: left running (make airflow did not start it); scripts/local_s3.sh stop"
    fi
    rm -f "$state/port"
    return "$failed"
}

start_stack() {
    survey
    if ((${#stopped[@]} == 0)); then
        stack_settings "$(cat "$state/port")"
        echo "airflow: already running (PIDs under $state/pids)"
        print_summary
        return 0
    fi
    if ((${#running[@]})); then
        echo "airflow: only ${running[*]} of the stack is running (${stopped[*]} exited; see" \
            "$state/logs/): run make airflow-stop, then make airflow" >&2
        return 1
    fi
    [[ -x $venv/bin/airflow ]] || {
        echo "airflow: no virtualenv at $venv (make setup)" >&2
        return 1
    }
    if [[ ${FRUITS_COMPUTE:-local} == emr && -z ${AIRFLOW_CONN_AWS_DEFAULT:-} ]]; then
        echo "airflow: FRUITS_COMPUTE=emr needs your AWS account: set AIRFLOW_CONN_AWS_DEFAULT" \
            "and FRUITS_BUCKET (README, \"The aws_default connection\")" >&2
        return 1
    fi
    local port
    port=$(choose_port)
    # From here on, a start that fails stops whatever it started.
    trap 'stop_stack >&2 || true' EXIT
    mkdir -p "$home" "$state/logs" "$state/pids"
    make_secrets
    echo "$port" >"$state/port"
    stack_settings "$port"

    if [[ -z ${AIRFLOW_CONN_AWS_DEFAULT:-} ]]; then
        "$root/scripts/local_s3.sh" status >/dev/null 2>&1 || touch "$state/started-s3"
        "$root/scripts/local_s3.sh" start
        AIRFLOW_CONN_AWS_DEFAULT=$(local_s3_connection "$("$root/scripts/local_s3.sh" endpoint)")
        export AIRFLOW_CONN_AWS_DEFAULT
        local seed=yes
    else
        echo "airflow: using your AIRFLOW_CONN_AWS_DEFAULT (no local S3; put the images" \
            "under s3://$FRUITS_BUCKET/$FRUITS_INPUT_PREFIX/Training/)"
    fi

    echo "airflow: metadata database in $home"
    airflow db migrate >"$state/logs/db-migrate.log" 2>&1 || {
        tail -20 "$state/logs/db-migrate.log" >&2
        return 1
    }
    if [[ ${seed:-} == yes ]]; then
        python "$root/docker/seed_sample_data.py" --source "$root/sample_data/fruits-360" \
            --bucket "$FRUITS_BUCKET" --prefix "$FRUITS_INPUT_PREFIX" \
            >"$state/logs/seed-sample-data.log" 2>&1 || {
            tail -20 "$state/logs/seed-sample-data.log" >&2
            return 1
        }
        tail -1 "$state/logs/seed-sample-data.log"
    fi

    local c
    for c in "${components[@]}"; do
        case $c in
        scheduler | triggerer) set -- airflow "$c" --skip-serve-logs ;;
        api-server) set -- airflow api-server --workers 1 ;;
        *) set -- airflow "$c" ;;
        esac
        launch "$(pidfile "$c")" "$state/logs/$c.log" "$@"
    done
    echo "airflow: starting ${components[*]} (logs in $state/logs/)"
    wait_until_ready
    trap - EXIT
}

wait_until_ready() {
    local deadline=$((SECONDS + ${AIRFLOW_START_TIMEOUT:-240})) said="" now c
    while ((SECONDS < deadline)); do
        survey
        for c in "${stopped[@]}"; do
            echo "airflow: $c exited; the end of $state/logs/$c.log:" >&2
            tail -25 "$state/logs/$c.log" >&2
            return 1
        done
        now=$(health)
        case $now in
        ok)
            print_summary
            return 0
            ;;
        IMPORT\ ERROR*)
            echo "$now" >&2
            echo "airflow: $dag_id does not load (above); stopping" >&2
            return 1
            ;;
        esac
        [[ $now != "$said" ]] && echo "airflow: $now"
        said=$now
        sleep 2
    done
    echo "airflow: not ready after ${AIRFLOW_START_TIMEOUT:-240} s ($now); logs in" \
        "$state/logs/; stopping" >&2
    return 1
}

show_status() {
    survey
    local c pid
    for c in "${components[@]}"; do
        if recorded_alive "$(pidfile "$c")"; then
            read -r pid _ <"$(pidfile "$c")"
            echo "airflow $c: running (PID $pid)"
        else
            echo "airflow $c: stopped"
        fi
    done
    [[ -f $state/port ]] && ((${#running[@]})) && echo "UI: $(url)"
    "$root/scripts/local_s3.sh" status || true
    ((${#stopped[@]} == 0))
}

show_env() {
    local port
    port=$(cat "$state/port" 2>/dev/null || echo "${AIRFLOW_PORT:-8080}")
    stack_settings "$port"
    export AIRFLOW_CONN_AWS_DEFAULT=${AIRFLOW_CONN_AWS_DEFAULT:-local S3}
    env | grep -E '^(AIRFLOW|FRUITS_|PYSPARK_)' | sort |
        sed -E 's/^((AIRFLOW_CONN_[A-Z_]*|[A-Z_]*(SECRET|FERNET_KEY)[A-Z_]*)=).+$/\1<secret>/'
}

case ${1:-start} in
start | stop)
    mkdir -p "$state"
    # One start or stop at a time; the components must not inherit the lock (launch closes fd 9).
    exec 9>"$state/lock"
    flock -n 9 || {
        echo "airflow: another start or stop of this stack is in progress" >&2
        exit 1
    }
    if [[ $1 == start ]]; then start_stack; else stop_stack; fi
    ;;
status) show_status ;;
env) show_env ;;
*)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
