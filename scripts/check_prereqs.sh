#!/usr/bin/env bash
# What a machine needs before `make setup`, `make demo` or `make test`, checked up front:
# every missing piece is listed with the command that installs it (Debian/Ubuntu names;
# .ci/apt-packages.txt has the same list for CI).
#
#   scripts/check_prereqs.sh setup|demo|lint|test
set -euo pipefail

target=${1:-setup}
missing=()

need() { # need TOOL "install command"
    command -v "$1" >/dev/null 2>&1 || missing+=("$1: $2")
}

# Python 3.11 (pyproject.toml) for the virtualenv.
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    missing+=("Python 3.11 as \$PYTHON (now: $("$python" --version 2>&1 || echo none)): apt-get install python3.11 python3.11-venv, or make PYTHON=/path/to/python3.11")
fi
"$python" -c 'import ensurepip, venv' 2>/dev/null ||
    missing+=("python venv/ensurepip: apt-get install python3-venv")

# Java for Spark 3.5 (tested on 17; Spark 3.5 also supports 11 and 21).
if command -v java >/dev/null 2>&1; then
    version=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
    case $version in
        11 | 17 | 21) ;;
        *) missing+=("Java 17 (found Java ${version:-?}, which Spark 3.5 does not run on): apt-get install openjdk-17-jre-headless") ;;
    esac
else
    missing+=("java: apt-get install openjdk-17-jre-headless")
fi

if [[ $target == demo || $target == test ]]; then
    # scripts/local_s3.sh asks the local S3 server whether it is up.
    need curl "apt-get install curl"
    # Spark's launch scripts and the stop of `make airflow` list processes.
    need ps "apt-get install procps"
fi
if [[ $target == lint || $target == test ]]; then
    need shellcheck "apt-get install shellcheck"
fi
if [[ $target == test ]]; then
    need docker-compose "apt-get install --no-install-recommends docker-compose"
    need chromium "apt-get install --no-install-recommends chromium"
    # The browser tests render text; without a font Chromium draws empty boxes.
    [[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] ||
        missing+=("DejaVu fonts: apt-get install fonts-dejavu-core")
    # The PCA test runs on netlib's pure-Java fallback and on native OpenBLAS.
    [[ -f /usr/lib/$(uname -m)-linux-gnu/openblas-pthread/libopenblas.so.0 ]] ||
        missing+=("OpenBLAS (the PCA test's native variant): apt-get install libopenblas0-pthread")
fi

if ((${#missing[@]})); then
    echo "make $target needs what this machine lacks:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi
