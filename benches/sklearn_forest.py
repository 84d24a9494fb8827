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

    # KFold + RandomForestClassifier(n_jobs=-1): out-of-fold probabilities for every training row.
    from sklearn.model_selection import KFold

    times = []
    oof = np.zeros((N_TRAIN, int(y.max()) + 1))
    for _ in range(3):
        t = time.perf_counter()
        for fit_idx, held_idx in KFold(n_splits=10, shuffle=True, random_state=0).split(x_train):
            model = RandomForestClassifier(
                n_estimators=100, n_jobs=-1, max_features="sqrt", random_state=0
            )
            model.fit(x_train[fit_idx], y_train[fit_idx])
            oof[held_idx] = model.predict_proba(x_train[held_idx])
        times.append(time.perf_counter() - t)
    times.sort()
    oof_accuracy = float(np.mean(oof.argmax(axis=1) == y_train))
    print(f"sklearn crossfit 10x100: {times[1]:.3f} s (median of 3), out-of-fold accuracy {oof_accuracy:.3f}")


if __name__ == "__main__":
    main()
