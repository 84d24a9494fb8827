#!/usr/bin/env bash
# Training steps per second of the same small CNNs in kdlab and in PyTorch (CPU), their
# ratio, and kdlab's GFLOP/s with its share of the machine's computed peak.
# Usage: scripts/bench-cnn.sh (KDLAB_BENCH_STEPS, default 200; BENCH_REPEATS, default 3).
#
# Networks: `bench`, conv 1->16 (3x3, pad 1) -> ReLU -> conv 16->32 (3x3, stride 2) -> ReLU ->
# conv 32->64 (3x3, stride 2) -> ReLU -> global average pool -> linear 64->10; `attention`,
# the attention-augmentation study's teacher member (conv 8-16-32-32, He init). Batch 64 of
# 28x28 random images, cross-entropy, plain SGD. Both run on 1 thread (how the study runner
# uses candle: one model per core) and on all cores. Runs alternate and the best of
# BENCH_REPEATS is kept, so load from other processes hurts both sides alike.
# A throwaway venv with CPU PyTorch lives in target/bench-venv-torch (scripts/torch-venv.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
venv=target/bench-venv-torch
steps=${KDLAB_BENCH_STEPS:-200}
repeats=${BENCH_REPEATS:-3}
cores=$(nproc)

scripts/torch-venv.sh

# Build once up front so no timing includes compilation; build output stays on stderr.
cargo bench --quiet --bench cnn --no-run

rate() { sed -E 's/^[^:]*: ([0-9.]+) steps.*/\1/' <<<"$1"; }
best() { sort -g | tail -1; }

for shape in bench attention; do
    for threads in 1 "$cores"; do
        kd_rates=() torch_rates=() flops=""
        for _ in $(seq "$repeats"); do
            out=$(KDLAB_BENCH_SHAPE=$shape RAYON_NUM_THREADS=$threads KDLAB_BENCH_STEPS=$steps KDLAB_BENCH_SKIP_CANDLE=1 \
                cargo bench --quiet --bench cnn)
            kd=$(grep '^kdlab cnn: [0-9.]* steps' <<<"$out")
            flops=$(grep 'GFLOP/step' <<<"$out" | sed -E 's/^kdlab cnn: ([0-9.]+) GFLOP\/step.*/\1/')
            peak=$(grep 'GFLOP/step' <<<"$out" | sed -E 's/.*computed peak of ([0-9.]+) GFLOP\/s each \((.*)\)$/\1 \2/')
            measured=$(grep 'measured rate' <<<"$out" | sed -E 's/.*measured rate of ([0-9.]+) GFLOP\/s each.*/\1/')
            th=$("$venv/bin/python" benches/torch_cnn.py "$steps" "$threads" "$shape")
            kd_rates+=("$(rate "$kd")") torch_rates+=("$(rate "$th")")
        done
        k=$(printf '%s\n' "${kd_rates[@]}" | best)
        t=$(printf '%s\n' "${torch_rates[@]}" | best)
        echo "cnn $shape, $threads thread(s): kdlab $k steps/s, pytorch $t steps/s (best of $repeats)"
        awk -v k="$k" -v t="$t" -v n="$threads" -v f="$flops" -v p="${peak%% *}" -v m="$measured" -v s="$shape" \
            'BEGIN { printf "cnn %s, %d thread(s): kdlab/pytorch %.2fx; kdlab %.1f GFLOP/s = %.0f%% of the computed peak (%.0f GFLOP/s per core), %.0f%% of the measured gemm rate (%.0f GFLOP/s per core)\n", s, n, k / t, k * f, (p > 0 ? 100 * k * f / (p * n) : 0), p, (m > 0 ? 100 * k * f / (m * n) : 0), m }'
    done
done
echo "peak computed as: ${peak#* }; measured rate: the gemm crate on a 512x512x512 f32 product, 1 thread, best of 3"
# candle's own conv2d on the same network, for the record (one run, fewer steps).
RAYON_NUM_THREADS=1 KDLAB_BENCH_STEPS=$((steps / 2)) cargo bench --quiet --bench cnn | grep '^candle'
