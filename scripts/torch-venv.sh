#!/usr/bin/env bash
# Makes the throwaway venv with CPU PyTorch the PyTorch benches use, target/bench-venv-torch.
set -euo pipefail

cd "$(dirname "$0")/.."
venv=target/bench-venv-torch
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    # The CPU-only wheel index first. Where it cannot be reached, PyPI's torch: its wheel
    # alone does not import (it loads the CUDA libraries at import time, even on a machine
    # without a GPU), so it comes with its CUDA dependencies, several GB.
    "$venv/bin/pip" install --quiet --disable-pip-version-check --retries 1 --timeout 20 \
        --index-url https://download.pytorch.org/whl/cpu torch numpy \
        || "$venv/bin/pip" install --quiet --disable-pip-version-check torch numpy
fi
