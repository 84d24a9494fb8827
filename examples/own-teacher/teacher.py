"""A teacher trained outside kdlab (scikit-learn and NumPy only), handed to a kdlab study as
prediction files (`[teacher] kind = "predictions"`).

Data: UCI MAGIC gamma telescope, from kdlab's data cache (`scripts/fetch-data.sh` fetches it;
$KDLAB_DATA_CACHE, default data-cache/). The script writes it as magic.csv with a header, the
`file` data set study.toml reads. For each of 5 seeds it draws its own stratified split of
2,000 training and 1,000 test rows, fits a random forest of fully grown trees (300 trees) on the
training rows, and cross-fits it itself (5 folds, `cross_val_predict`), then writes
teacher/seed-<s>/train.csv (in-sample probabilities), out_of_fold.csv (each training row scored
by the fold forest that did not see it) and test.csv. `row` is the row's number among
magic.csv's data rows, from 1; the files' rows are the split kdlab's students use.
Usage, from the repository root:
    python examples/own-teacher/teacher.py      (about half a minute)
    target/release/kdlab study examples/own-teacher/study.toml
"""
import os
import pathlib

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

HERE = pathlib.Path(__file__).parent
CACHE = pathlib.Path(os.environ.get("KDLAB_DATA_CACHE", HERE.parent.parent / "data-cache"))
SEEDS, N_TRAIN, N_TEST, FOLDS = 5, 2000, 1000, 5

raw = np.genfromtxt(CACHE / "magic" / "magic.dat", delimiter=",", dtype=str)
X = raw[:, :10].astype(float)
labels = raw[:, 10]
names = ["f_length", "f_width", "f_size", "f_conc", "f_conc1", "f_asym", "f_m3long", "f_m3trans", "f_alpha", "f_dist"]
with (HERE / "magic.csv").open("w") as f:
    f.write(",".join(names + ["class"]) + "\n")
    for x, c in zip(raw[:, :10], labels):
        f.write(",".join(list(x) + [c]) + "\n")
# kdlab numbers text classes in sorted order: g = 0, h = 1.
classes = sorted(set(labels))
y = np.array([classes.index(c) for c in labels])


def write(path, rows, p, folds=None):
    with path.open("w") as f:
        f.write("row," + ("fold," if folds is not None else "") + ",".join(f"p{j}" for j in range(p.shape[1])) + "\n")
        for i, r in enumerate(rows):
            fold = f"{folds[i]}," if folds is not None else ""
            f.write(f"{r + 1},{fold}" + ",".join(repr(float(v)) for v in p[i]) + "\n")


for seed in range(SEEDS):
    rows = np.arange(len(y))
    train, rest = train_test_split(rows, train_size=N_TRAIN, stratify=y, random_state=seed)
    test, _ = train_test_split(rest, train_size=N_TEST, stratify=y[rest], random_state=seed)
    forest = lambda: RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=2)
    teacher = forest().fit(X[train], y[train])
    folds = np.empty(len(train), dtype=int)
    for k, (_, held) in enumerate(StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(X[train], y[train])):
        folds[held] = k
    out_of_fold = cross_val_predict(forest(), X[train], y[train], cv=[(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(FOLDS)], method="predict_proba")
    d = HERE / "teacher" / f"seed-{seed}"
    d.mkdir(parents=True, exist_ok=True)
    write(d / "train.csv", train, teacher.predict_proba(X[train]))
    write(d / "out_of_fold.csv", train, out_of_fold, folds)
    write(d / "test.csv", test, teacher.predict_proba(X[test]))
print(f"wrote {HERE / 'magic.csv'} and {SEEDS} seeds of teacher files in {HERE / 'teacher'}")
