# shellcheck shell=bash disable=SC2154  # $venv: set by the sourcing script
# Background servers of this checkout: start one in a session of its own, stop it with every
# process it started, and pick free TCP ports. Sourced by local_s3.sh and airflow.sh.
#
# A server is recorded as "PID STARTTIME" in a pid file: the start time (clock ticks after
# boot, /proc/PID/stat) tells our process from a later one that reused its PID, so a stale
# pid file never leads to signalling a stranger.

# start_time PID: when PID started; fails if there is no such process.
start_time() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # The command name (field 2) may hold spaces; fields after it are plain numbers.
    read -r -a fields <<<"${stat##*) }"
    echo "${fields[19]}"
}

# alive PID STARTTIME: that very process is still running (a zombie is not).
alive() {
    local now state
    now=$(start_time "$1") || return 1
    [[ $now == "$2" ]] || return 1
    state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    [[ $state != Z ]]
}

# recorded_alive PIDFILE: the process the pid file names is running.
recorded_alive() {
    local pid started
    [[ -f $1 ]] || return 1
    read -r pid started <"$1" || return 1
    alive "$pid" "$started"
}

# launch PIDFILE LOG COMMAND...: run COMMAND detached, in a session of its own, and record it.
launch() {
    local pidfile=$1 log=$2 pid started
    shift 2
    # Without job control the background child is no group leader, so setsid does not fork:
    # $! is the session leader. fd 9 (the caller's lock) must not outlive the caller.
    setsid "$@" >"$log" 2>&1 </dev/null 9>&- &
    pid=$!
    started=$(start_time "$pid") || {
        echo "$(basename "$log" .log): exited at once; see $log" >&2
        return 1
    }
    echo "$pid $started" >"$pidfile"
}

# family PID: PID, its descendants and every member of its session, one PID a line. Airflow's
# task processes take process groups of their own and spark-submit a session of its own, so
# neither a process group nor the session alone reaches everything.
family() {
    ps -eo pid=,ppid=,sid= | awk -v root="$1" '
        { children[$2] = children[$2] " " $1; if ($3 == root) member[$1] = 1 }
        END {
            queue[1] = root; n = 1; member[root] = 1
            for (i = 1; i <= n; i++) {
                split(children[queue[i]], kids, " ")
                for (k in kids) if (!(kids[k] in seen)) { seen[kids[k]] = 1; queue[++n] = kids[k]; member[kids[k]] = 1 }
            }
            for (p in member) print p
        }'
}

# stop_recorded PIDFILE NAME [GRACE]: stop the recorded process and everything it started.
# SIGTERM to the leader first (an idle Airflow component shuts down cleanly on it); after
# GRACE seconds SIGTERM to every process seen, so a running task ends (the scheduler would
# wait for it) and reports its failure; 15 s later SIGKILL. Processes are remembered as they
# appear, so one orphaned on the way (its parent gone) is still stopped.
stop_recorded() {
    local pidfile=$1 name=$2 grace=${3:-10} pid started p s i
    if ! recorded_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    read -r pid started <"$pidfile"
    local -A seen=()
    remember() {
        for p in $(family "$pid"); do
            [[ -n ${seen[$p]:-} ]] && continue
            s=$(start_time "$p") && seen[$p]=$s
        done
    }
    any_alive() {
        for p in "${!seen[@]}"; do alive "$p" "${seen[$p]}" && return 0; done
        return 1
    }
    signal_all() {
        for p in "${!seen[@]}"; do alive "$p" "${seen[$p]}" && kill "-$1" "$p" 2>/dev/null; done
        return 0
    }
    remember
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 5; i++)); do
        alive "$pid" "$started" && remember
        any_alive || break
        sleep 0.2
    done
    if any_alive; then
        echo "$name: still running after ${grace}s (a task?); terminating all its processes" >&2
        signal_all TERM
        for ((i = 0; i < 75; i++)); do
            alive "$pid" "$started" && remember
            any_alive || break
            sleep 0.2
        done
    fi
    if any_alive; then
        echo "$name: killing what is left" >&2
        signal_all KILL
        for ((i = 0; i < 25; i++)); do any_alive || break; sleep 0.2; done
    fi
    if any_alive; then
        echo "$name: could not stop every process (PIDs ${!seen[*]})" >&2
        return 1
    fi
    rm -f "$pidfile"
}

# port_free PORT: nothing listens on PORT (checked the way servers bind: SO_REUSEADDR, so a
# port in TIME_WAIT after a restart counts as free).
port_free() {
    "$venv/bin/python" - "$1" <<'EOF'
import socket, sys
with socket.socket() as sock:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
EOF
}

# free_port [OFFSET]: a free port P (P+OFFSET free too: SeaweedFS puts gRPC there).
free_port() {
    "$venv/bin/python" - "${1:-0}" <<'EOF'
import random, socket, sys
offset = int(sys.argv[1])
for _ in range(500):
    port = random.randint(20000, 55000)
    try:
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", port))
            if offset:
                b.bind(("127.0.0.1", port + offset))
    except OSError:
        continue
    print(port)
    sys.exit(0)
sys.exit("no free port found")
EOF
}
