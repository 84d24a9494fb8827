#!/usr/bin/env bash
# Runs studies (names or paths; default every study in studies/) one by one and prints, for
# each, the peak resident memory measured by GNU time against kdlab's own up-front estimate.
# Usage: scripts/measure-memory.sh [--out DIR] [STUDY ...]. Results go to DIR (default reports).
set -euo pipefail
cd "$(dirname "$0")/.."
out=reports
if [ "${1:-}" = "--out" ]; then out=$2; shift 2; fi
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
studies=("$@")
[ ${#studies[@]} -gt 0 ] || studies=(studies/*.toml)
printf '| study | wall | peak RSS | estimate |\n|---|---|---|---|\n'
for s in "${studies[@]}"; do
    log=$(mktemp)
    # A limit far below any study makes kdlab print its estimate and stop.
    estimate=$(target/release/kdlab study "$s" --out "$out" --max-memory 0.000001 2>&1 \
        | sed -nE 's/.*estimated peak memory is ([0-9.]+ GiB).*/\1/p' || true)
    /usr/bin/time -f '%e %M' -o "$log" target/release/kdlab study "$s" --out "$out" >/dev/null 2>&1
    read -r wall kib <"$log"
    rm -f "$log"
    printf '| %s | %s s | %.2f GiB | %s |\n' "$(basename "$s" .toml)" "$wall" "$(echo "$kib / 1048576" | bc -l)" "$estimate"
done
