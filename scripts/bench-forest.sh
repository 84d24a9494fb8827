#!/usr/bin/env bash
# Times kdlab's random forest against scikit-learn's on the same data set and prints
# sklearn_time / kdlab_time. Usage: scripts/bench-forest.sh (from anywhere in the repo).
#
# A throwaway venv with scikit-learn lives in target/bench-venv; the data set (3 classes,
# 20 features, 10,000 train + 5,000 test rows, fixed seed) is written to target/.
set -euo pipefail

cd "$(dirname "$0")/.."
venv=target/bench-venv
data=target/bench-forest-data.csv

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check scikit-learn numpy
fi

# Like sklearn's make_classification(n_features=20, n_informative=7, n_redundant=4,
# n_classes=3, n_clusters_per_class=2, flip_y=0.01): Gaussian clusters on hypercube
# vertices, linear mixtures of the informative columns, pure-noise columns.
"$venv/bin/python" - "$data" <<'PY'
import sys
import numpy as np

rng = np.random.default_rng(20240601)
n_train, n_test, n_classes, n_inf, n_red, n_feat = 10_000, 5_000, 3, 7, 4, 20
n = n_train + n_test
centroids = rng.choice([-1.0, 1.0], size=(2 * n_classes, n_inf))
cluster = rng.integers(0, 2 * n_classes, size=n)
y = cluster % n_classes
inf = centroids[cluster] + rng.standard_normal((n, n_inf))
red = inf @ rng.standard_normal((n_inf, n_red))
noise = rng.standard_normal((n, n_feat - n_inf - n_red))
x = np.hstack([inf, red, noise])
x = x[:, rng.permutation(n_feat)]
flip = rng.random(n) < 0.01
y[flip] = rng.integers(0, n_classes, size=flip.sum())
header = ",".join([f"f{j}" for j in range(n_feat)] + ["label"])
np.savetxt(sys.argv[1], np.column_stack([x, y]), delimiter=",", header=header,
           comments="", fmt=["%.17g"] * n_feat + ["%d"])
PY

export KDLAB_BENCH_DATA="$PWD/$data"
# Build output and warnings go to stderr and stay visible; result lines are on stdout.
kd_out=$(cargo bench --quiet --bench forest)
sk_out=$("$venv/bin/python" benches/sklearn_forest.py "$KDLAB_BENCH_DATA")
echo "$kd_out"
echo "$sk_out"

secs() { sed -E 's/^[^:]*: ([0-9.]+) s.*/\1/' <<<"$1"; }
ratio() {
    local kd sk
    kd=$(secs "$(grep "^kdlab $1" <<<"$kd_out")")
    sk=$(secs "$(grep "^sklearn $1" <<<"$sk_out")")
    awk -v sk="$sk" -v kd="$kd" -v what="$1" 'BEGIN { printf "speed ratio sklearn/kdlab, %s: %.2fx\n", what, sk / kd }'
}
ratio "forest fit"
ratio "crossfit 10x100"
