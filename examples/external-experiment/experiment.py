"""A small distillation experiment run outside kdlab (scikit-learn and NumPy only), written as
a results table for `kdlab analyze`.

Data: scikit-learn's bundled handwritten digits (8x8, 10 classes, 1,797 images; nothing is
downloaded). For each seed and each training size, a stratified split of `n_train` training
images (the rest are the test set), a random-forest teacher (300 trees), and three students,
each the same one-hidden-layer MLP classifier (32 units):
- `labels`: trained on the labels;
- `kd`: trained on the teacher's probabilities on its own training images (cross-entropy with
  soft targets: each image repeated once per class, weighted by the teacher's probability);
- `kd-crossfit`: the same on 5-fold out-of-fold teacher probabilities (Dao et al. 2021: a
  forest's in-sample probabilities are overconfident, cross-fitting removes that bias).

Writes beside this file:
- results.csv: one row per seed x arm x n_train, with the teacher's own row (arm `teacher`),
  columns seed, arm, n_train, accuracy, log_loss, agreement (test top-1 agreement with the
  teacher), macro_f1, fit_seconds (analyze.toml reads it);
- probabilities.csv: every model's test probabilities, one row per seed x arm x n_train x test
  image, columns seed, arm, n_train, row, label, p0 ... p9, for kdlab to score itself
  (analyze-probabilities.toml reads it; about 20 MB, so it is not committed).
Usage: python experiment.py   (about a minute on 2 cores)
"""
import csv
import pathlib
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import f1_score, log_loss
from sklearn.model_selection import cross_val_predict, train_test_split
from sklearn.neural_network import MLPClassifier

SEEDS = range(10)
SIZES = [100, 400]
X, y = load_digits(return_X_y=True)
X = X / 16.0
K = 10


def soft_fit(seed, x, targets):
    """An MLP fit to soft targets: each row once per class, weighted by its probability."""
    xs = np.repeat(x, K, axis=0)
    ys = np.tile(np.arange(K), len(x))
    return MLPClassifier(**student(seed)).fit(xs, ys, sample_weight=targets.reshape(-1))


def scores(p, y_test, teacher_test):
    pred = p.argmax(axis=1)
    return {
        "accuracy": float((pred == y_test).mean()),
        "log_loss": float(log_loss(y_test, np.clip(p, 1e-15, 1.0), labels=range(K))),
        "agreement": float((pred == teacher_test.argmax(axis=1)).mean()) if teacher_test is not None else "",
        "macro_f1": float(f1_score(y_test, pred, average="macro")),
    }


def probability_rows(seed, arm, n_train, ids, labels, p):
    """One row per test image: its id (its index in the data set), label and probabilities."""
    return [[seed, arm, n_train, i, c, *(f"{v:.9g}" for v in row)] for i, c, row in zip(ids, labels, p)]


def student(seed):
    return dict(hidden_layer_sizes=(32,), max_iter=500, random_state=seed)


rows = []
dump = []
for n_train in SIZES:
    for seed in SEEDS:
        i_tr, i_te = train_test_split(np.arange(len(X)), train_size=n_train, stratify=y, random_state=seed)
        x_tr, x_te, y_tr, y_te = X[i_tr], X[i_te], y[i_tr], y[i_te]
        start = time.perf_counter()
        teacher = RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=2).fit(x_tr, y_tr)
        p_teacher = teacher.predict_proba(x_te)
        rows.append({"seed": seed, "arm": "teacher", "n_train": n_train, **scores(p_teacher, y_te, None), "fit_seconds": time.perf_counter() - start})
        dump += probability_rows(seed, "teacher", n_train, i_te, y_te, p_teacher)
        in_sample = teacher.predict_proba(x_tr)
        out_of_fold = cross_val_predict(RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=2), x_tr, y_tr, cv=5, method="predict_proba")
        arms = {
            "labels": lambda: MLPClassifier(**student(seed)).fit(x_tr, y_tr).predict_proba(x_te),
            "kd": lambda: soft_fit(seed, x_tr, in_sample).predict_proba(x_te),
            "kd-crossfit": lambda: soft_fit(seed, x_tr, out_of_fold).predict_proba(x_te),
        }
        for arm, fit in arms.items():
            start = time.perf_counter()
            p = fit()
            rows.append({"seed": seed, "arm": arm, "n_train": n_train, **scores(p, y_te, p_teacher), "fit_seconds": time.perf_counter() - start})
            dump += probability_rows(seed, arm, n_train, i_te, y_te, p)

out = pathlib.Path(__file__).with_name("results.csv")
with out.open("w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["seed", "arm", "n_train", "accuracy", "log_loss", "agreement", "macro_f1", "fit_seconds"])
    writer.writeheader()
    writer.writerows(rows)
print(f"wrote {out} ({len(rows)} rows)")
out = pathlib.Path(__file__).with_name("probabilities.csv")
with out.open("w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["seed", "arm", "n_train", "row", "label", *(f"p{j}" for j in range(K))])
    writer.writerows(dump)
print(f"wrote {out} ({len(dump)} rows)")
