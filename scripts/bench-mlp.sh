#!/usr/bin/env bash
# Training steps per second of kdlab's MLP student (its whole training loop) and of the same
# MLP in PyTorch (CPU), and their ratio, at the shapes the studies use.
# Usage: scripts/bench-mlp.sh (KDLAB_BENCH_EPOCHS, default 200 for tabular and 20 for fidelity,
# about a second each; BENCH_REPEATS, default 3).
#
# Shapes: `tabular`, 10 -> 32 -> 2, batch 32, 2,000 rows (the semiparametric studies' default
# student); `fidelity`, 40 -> 128 -> 128 -> 10, batch 128, 4,096 rows (the fidelity studies'
# MNIST-1D student). AdamW, cross-entropy, no validation. Both run on 1 thread (how the study
# runner uses candle: one model per core) and on all cores. Runs alternate and the best of
# BENCH_REPEATS is kept, so load from other processes hurts both sides alike.
set -euo pipefail

cd "$(dirname "$0")/.."
venv=target/bench-venv-torch
repeats=${BENCH_REPEATS:-3}
cores=$(nproc)
scripts/torch-venv.sh
cargo bench --quiet --bench mlp --no-run

rate() { sed -E 's/^[^:]*: ([0-9.]+) steps.*/\1/' <<<"$1"; }
best() { sort -g | tail -1; }

for shape in tabular fidelity; do
    if [ "$shape" = tabular ]; then epochs=${KDLAB_BENCH_EPOCHS:-200}; else epochs=${KDLAB_BENCH_EPOCHS:-20}; fi
    for threads in 1 "$cores"; do
        kd_rates=() torch_rates=()
        for _ in $(seq "$repeats"); do
            kd=$(KDLAB_BENCH_SHAPE=$shape RAYON_NUM_THREADS=$threads KDLAB_BENCH_EPOCHS=$epochs cargo bench --quiet --bench mlp)
            th=$("$venv/bin/python" benches/torch_mlp.py "$epochs" "$threads" "$shape")
            kd_rates+=("$(rate "$kd")") torch_rates+=("$(rate "$th")")
        done
        k=$(printf '%s\n' "${kd_rates[@]}" | best)
        t=$(printf '%s\n' "${torch_rates[@]}" | best)
        awk -v k="$k" -v t="$t" -v n="$threads" -v s="$shape" -v r="$repeats" \
            'BEGIN { printf "mlp %s, %d thread(s): kdlab %.1f steps/s, pytorch %.1f steps/s, kdlab/pytorch %.2fx (best of %d)\n", s, n, k, t, k / t, r }'
    done
done
