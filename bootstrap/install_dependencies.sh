#!/usr/bin/env bash
# EMR bootstrap action: a Python 3.11 virtualenv with what this node's part of the job needs.
#
# Usage:
#   install_dependencies.sh DRIVER_REQUIREMENTS WORKER_REQUIREMENTS
#
#   DRIVER_REQUIREMENTS  requirements-emr-driver.txt: the master runs the Spark driver
#                        (client deploy mode), which exports the model with TensorFlow.
#   WORKER_REQUIREMENTS  requirements-emr-worker-<engine>.txt: core nodes run the Python
#                        workers, which need the run's inference engine only.
#   Each is an s3:// URI (uploaded next to this script) or a local path.
#
# What it does, on every node (bootstrap actions run on master and core alike):
#   1. picks the file for the node's role from EMR's instance.json ("isMaster");
#   2. installs python3.11 with dnf if missing: emr-7.x runs Amazon Linux 2023,
#      whose /usr/bin/python3 stays 3.9; AL2023 packages 3.11 side by side as
#      python3.11, and the job's pins (numpy 2.4, pandas 2.3, TensorFlow 2.21)
#      need >= 3.11. No native BLAS/LAPACK: the job's PCA does not need one
#      (spark/fruits_job/pca.py) and it did not make the PCA stage faster
#      (bench/pca_benchmark.py);
#   3. creates the venv /opt/fruits-features/venv, the path the cluster spec
#      gives Spark as PYSPARK_PYTHON (the same path on every node);
#   4. pip installs the pinned requirements into it (no pip cache: the root
#      volume holds the venv) and imports the modules the file's first line
#      names (`# verify-imports: ...`), so a broken install fails the bootstrap
#      instead of the first Spark task.
#
# Idempotent: a stamp in the venv records the requirements' sha256 and the
# interpreter; when both match, a re-run changes nothing. A failed run leaves no
# stamp, so the next run finishes the job.
#
# Overrides, for tests and dry runs on a workstation (EMR sets none of them):
#   BOOTSTRAP_VENV_DIR      venv location (default /opt/fruits-features/venv)
#   BOOTSTRAP_PYTHON        interpreter command or path (default python3.11)
#   BOOTSTRAP_INSTANCE_INFO EMR's instance.json (default: where EMR writes it)
#   BOOTSTRAP_PIP_ARGS      extra arguments for `pip install`, split on spaces
set -euo pipefail

readonly DEFAULT_VENV_DIR=/opt/fruits-features/venv
readonly VENV_DIR="${BOOTSTRAP_VENV_DIR:-$DEFAULT_VENV_DIR}"
readonly PYTHON="${BOOTSTRAP_PYTHON:-python3.11}"
readonly STAMP="$VENV_DIR/.fruits-features-requirements.sha256"

log() {
    printf '%s install_dependencies: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"
}

die() {
    log "ERROR: $*"
    exit 1
}

# Bootstrap actions run as the hadoop user; installing packages and writing
# under /opt need root.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    else
        sudo "$@"
    fi
}

(($# == 2)) || die "usage: $0 DRIVER_REQUIREMENTS WORKER_REQUIREMENTS"

# EMR writes instance.json before bootstrap actions run; older releases kept it under /mnt.
info=${BOOTSTRAP_INSTANCE_INFO:-}
if [[ -z $info ]]; then
    for candidate in /emr/instance-controller/lib/info/instance.json /mnt/var/lib/info/instance.json; do
        [[ -f $candidate ]] && info=$candidate && break
    done
fi
[[ -n $info && -f $info ]] || die "EMR's instance.json not found: cannot tell the master from a core node"
if grep -Eq '"isMaster"[[:space:]]*:[[:space:]]*true' "$info"; then
    role=master
    requirements_source=$1
else
    role=core
    requirements_source=$2
fi
log "node role: $role (from $info)"

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

requirements="$workdir/requirements.txt"
case "$requirements_source" in
    s3://*)
        log "downloading $requirements_source"
        aws s3 cp --only-show-errors "$requirements_source" "$requirements"
        ;;
    *)
        [[ -f "$requirements_source" ]] || die "requirements file not found: $requirements_source"
        cp "$requirements_source" "$requirements"
        ;;
esac
imports=$(sed -n '1s/^# verify-imports:[[:space:]]*//p' "$requirements")
[[ -n $imports ]] || die "$requirements_source does not start with '# verify-imports: <modules>'"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    log "installing python3.11 python3.11-pip with dnf"
    as_root dnf install -y python3.11 python3.11-pip
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON still missing after dnf install"
log "using $(command -v "$PYTHON")"
python_version="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
log "python $python_version"

wanted_stamp="$(sha256sum "$requirements" | cut -d' ' -f1) python-$python_version"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$wanted_stamp" ]] \
    && "$VENV_DIR/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "$VENV_DIR is up to date; nothing to do"
    exit 0
fi

# A venv whose interpreter no longer runs (or is another version) cannot be
# repaired in place; pip installs into a healthy one are incremental.
if [[ -x "$VENV_DIR/bin/python" ]]; then
    venv_version="$("$VENV_DIR/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true)"
    if [[ "$venv_version" != "$python_version" ]]; then
        log "removing $VENV_DIR (python '${venv_version:-broken}', want $python_version)"
        rm -rf "$VENV_DIR"
    fi
fi

if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    parent="$(dirname "$VENV_DIR")"
    if [[ ! -w "$parent" ]]; then
        # Own the parent so pip runs as this user, not as root.
        as_root mkdir -p "$parent"
        as_root chown "$(id -u):$(id -g)" "$parent"
    fi
    log "creating venv $VENV_DIR"
    "$PYTHON" -m venv "$VENV_DIR"
fi

pip_args=(install --disable-pip-version-check --no-input --progress-bar off --no-cache-dir)
if [[ -n "${BOOTSTRAP_PIP_ARGS:-}" ]]; then
    read -r -a extra_pip_args <<<"$BOOTSTRAP_PIP_ARGS"
    pip_args+=("${extra_pip_args[@]}")
fi
log "pip installing $(grep -cEv '^[[:space:]]*(#|$)' "$requirements" || true) pinned packages"
"$VENV_DIR/bin/python" -m pip "${pip_args[@]}" -r "$requirements"

log "importing: $imports"
read -r -a modules <<<"$imports"
# TensorFlow's C++ start-up chatter would bury the versions printed here.
TF_CPP_MIN_LOG_LEVEL=2 "$VENV_DIR/bin/python" - "${modules[@]}" <<'PY'
import importlib
import sys

for name in sys.argv[1:]:
    module = importlib.import_module(name)
    print(f"  {name} {getattr(module, '__version__', '')}".rstrip())
PY

printf '%s\n' "$wanted_stamp" >"$STAMP"
log "done: $VENV_DIR ($(du -sh "$VENV_DIR" | cut -f1))"
