"""scikit-learn side of the forest benchmark (see scripts/bench-forest.sh).

Reads the CSV named by KDLAB_BENCH_DATA (or the first argument): feature columns f0..f19 and
a `label` column; the first 10,000 rows train, the rest test. Fits
RandomForestClassifier(n_estimators=100, n_jobs=-1, max_features="sqrt", random_state=0)
three times and prints the same one-line format as `cargo bench --bench forest`.
"""

import os
import sys
import time

import numpy as np
from sklearn.ensemble import RandomForestClassifier

N_TRAIN = 10_000


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KDLAB_BENCH_DATA")
    if not path:
        sys.exit("usage: sklearn_forest.py DATA.csv (or set KDLAB_BENCH_DATA)")
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    label = header.index("label")
    y = data[:, label].astype(np.int64)
    x = np.delete(data, label, axis=1)
    x_train, y_train = x[:N_TRAIN], y[:N_TRAIN]
    x_test, y_test = x[N_TRAIN:], y[N_TRAIN:]

    times = []
    model = None
    for _ in range(3):
        model = RandomForestClassifier(
            n_estimators=100, n_jobs=-1, max_features="sqrt", random_state=0
        )
        t = time.perf_counter()
        model.fit(x_train, y_train)
        times.append(time.perf_counter() - t)
    times.sort()
    accuracy = float(np.mean(model.predict(x_test) == y_test))
    print(f"sklearn forest fit: {times[1]:.3f} s (median of 3), test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
