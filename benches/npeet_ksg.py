"""NPEET side of the KSG benchmark (see scripts/bench-ksg.sh).

Reads the CSV named by the first argument (or KDLAB_BENCH_DATA): columns x0..x{dx-1} and
y0..y{dy-1}; the case is named after the file stem. Runs NPEET's `mi(x, y, k=3, base=2)` (KSG
algorithm 1, max-norm, bits) `--repeats` times (default 3) and prints the same one-line format
as `cargo bench --bench ksg`.

NPEET itself is not published on PyPI; `npeet-plus` is a fork whose `mi`, `add_noise`,
`avgdigamma` and `build_tree` are NPEET's code unchanged. Either import works.
"""

import argparse
import os
import time

import numpy as np

try:
    from npeet import entropy_estimators as ee  # NPEET installed from source
except ImportError:
    import npeet_plus as ee  # the PyPI fork


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default=os.environ.get("KDLAB_BENCH_DATA"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.data:
        parser.error("give DATA.csv (or set KDLAB_BENCH_DATA)")
    with open(args.data) as f:
        header = [h.strip() for h in f.readline().split(",")]
    data = np.loadtxt(args.data, delimiter=",", skiprows=1, ndmin=2)
    x = data[:, [i for i, h in enumerate(header) if h.startswith("x")]]
    y = data[:, [i for i, h in enumerate(header) if h.startswith("y")]]
    case = os.path.splitext(os.path.basename(args.data))[0]

    times, bits = [], float("nan")
    for _ in range(args.repeats):
        t = time.perf_counter()
        bits = float(ee.mi(x, y, k=3, base=2))
        times.append(time.perf_counter() - t)
    times.sort()
    print(
        f"npeet ksg {case}: {times[len(times) // 2]:.4f} s, {bits:.4f} bits "
        f"(median of {args.repeats}, 1 thread)"
    )


if __name__ == "__main__":
    main()
