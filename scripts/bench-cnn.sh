#!/usr/bin/env bash
# Training steps per second of the same small CNN in kdlab and in PyTorch (CPU), and their
# ratio. Usage: scripts/bench-cnn.sh (KDLAB_BENCH_STEPS, default 200; BENCH_REPEATS, default 3).
#
# Network: conv 1->16 (3x3, pad 1) -> ReLU -> conv 16->32 (3x3, stride 2) -> ReLU ->
# conv 32->64 (3x3, stride 2) -> ReLU -> global average pool -> linear 64->10; batch 64 of
# 28x28 random images, cross-entropy, plain SGD. Both run on 1 thread (how the study runner
# uses candle: one model per core) and on all cores. Runs alternate and the best of
# BENCH_REPEATS is kept, so load from other processes hurts both sides alike.
# A throwaway venv with CPU PyTorch lives in target/bench-venv-torch.
set -euo pipefail

cd "$(dirname "$0")/.."
venv=target/bench-venv-torch
steps=${KDLAB_BENCH_STEPS:-200}
repeats=${BENCH_REPEATS:-3}
cores=$(nproc)

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    # The CPU-only wheel index first. Where it cannot be reached, PyPI's torch: its wheel
    # alone does not import (it loads the CUDA libraries at import time, even on a machine
    # without a GPU), so it comes with its CUDA dependencies, several GB.
    "$venv/bin/pip" install --quiet --disable-pip-version-check --retries 1 --timeout 20 \
        --index-url https://download.pytorch.org/whl/cpu torch numpy \
        || "$venv/bin/pip" install --quiet --disable-pip-version-check torch numpy
fi

# Build once up front so no timing includes compilation; build output stays on stderr.
cargo bench --quiet --bench cnn --no-run

rate() { sed -E 's/^[^:]*: ([0-9.]+) steps.*/\1/' <<<"$1"; }
best() { sort -g | tail -1; }

for threads in 1 "$cores"; do
    kd_rates=() torch_rates=()
    for _ in $(seq "$repeats"); do
        kd=$(RAYON_NUM_THREADS=$threads KDLAB_BENCH_STEPS=$steps KDLAB_BENCH_SKIP_CANDLE=1 \
            cargo bench --quiet --bench cnn | grep '^kdlab cnn')
        th=$("$venv/bin/python" benches/torch_cnn.py "$steps" "$threads")
        kd_rates+=("$(rate "$kd")") torch_rates+=("$(rate "$th")")
    done
    k=$(printf '%s\n' "${kd_rates[@]}" | best)
    t=$(printf '%s\n' "${torch_rates[@]}" | best)
    echo "cnn, $threads thread(s): kdlab $k steps/s, pytorch $t steps/s (best of $repeats)"
    awk -v k="$k" -v t="$t" -v n="$threads" \
        'BEGIN { printf "cnn, %d thread(s): kdlab/pytorch %.2fx\n", n, k / t }'
done
# candle's own conv2d on the same network, for the record (one run, fewer steps).
RAYON_NUM_THREADS=1 KDLAB_BENCH_STEPS=$((steps / 2)) cargo bench --quiet --bench cnn | grep '^candle'
