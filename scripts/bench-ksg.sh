#!/usr/bin/env bash
# Times kdlab's KSG mutual-information estimator against NPEET's on the same data and prints
# npeet_time / kdlab_time and both errors against the true MI. Usage: scripts/bench-ksg.sh.
#
# Data (fixed seed, written to target/): correlated Gaussians, ρ = 0.8 per coordinate,
# n = 50,000, 1+1-D (true MI 0.737 bits) and 10+10-D (true 7.37 bits). kdlab runs on all
# cores (rayon) and on one thread; NPEET is single-threaded. NPEET on 10+10-D takes about a
# minute, so it runs once there (NPEET_REPEATS_10D to change).
set -euo pipefail

cd "$(dirname "$0")/.."
venv=target/bench-venv

if ! "$venv/bin/python" -c "import npeet_plus" 2>/dev/null \
    && ! "$venv/bin/python" -c "from npeet import entropy_estimators" 2>/dev/null; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    # NPEET is not on PyPI; npeet-plus is a fork that keeps NPEET's KSG code unchanged.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check numpy npeet-plus
fi

"$venv/bin/python" - target <<'PY'
import sys
import numpy as np

rng = np.random.default_rng(20240602)
n, rho = 50_000, 0.8
for d in (1, 10):
    x = rng.standard_normal((n, d))
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((n, d))
    header = ",".join([f"x{j}" for j in range(d)] + [f"y{j}" for j in range(d)])
    np.savetxt(f"{sys.argv[1]}/ksg-{d}d.csv", np.hstack([x, y]), delimiter=",",
               header=header, comments="", fmt="%.17g")
PY

# Build once up front so no timing includes compilation; build output stays on stderr.
cargo bench --quiet --bench ksg --no-run

secs() { sed -E 's/^[^:]*: ([0-9.]+) s.*/\1/' <<<"$1"; }
bits() { sed -E 's/^[^:]*: [0-9.]+ s, (-?[0-9.]+) bits.*/\1/' <<<"$1"; }

for case in 1d 10d; do
    data="$PWD/target/ksg-$case.csv"
    if [ "$case" = 1d ]; then d=1; reps=3; else d=10; reps=${NPEET_REPEATS_10D:-1}; fi
    truth=$(awk -v d="$d" 'BEGIN { printf "%.6f", -0.5 * d * log(1 - 0.64) / log(2) }')
    kd=$(KDLAB_BENCH_DATA="$data" cargo bench --quiet --bench ksg | grep '^kdlab ksg')
    kd1=$(KDLAB_BENCH_DATA="$data" RAYON_NUM_THREADS=1 cargo bench --quiet --bench ksg \
        | grep '^kdlab ksg')
    np=$("$venv/bin/python" benches/npeet_ksg.py "$data" --repeats "$reps")
    echo "$kd"
    echo "$kd1"
    echo "$np"
    awk -v t="$truth" -v kb="$(bits "$kd")" -v nb="$(bits "$np")" \
        -v kt="$(secs "$kd")" -v k1="$(secs "$kd1")" -v nt="$(secs "$np")" -v c="$case" 'BEGIN {
        ke = kb - t; ne = nb - t
        printf "ksg-%s: true MI %.4f bits; error kdlab %+.4f, npeet %+.4f bits\n", c, t, ke, ne
        printf "ksg-%s: speed ratio npeet/kdlab %.1fx (all cores), %.1fx (1 thread)\n", c, nt / kt, nt / k1
    }'
done
