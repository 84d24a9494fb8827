#!/usr/bin/env bash
# Installs what kdlab needs on a fresh Debian machine and builds it in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."

have_openblas() {
    dpkg-query -W -f='${Status}' libopenblas-dev 2>/dev/null | grep -q "install ok installed"
}

if ! have_openblas; then
    if [ "$(id -u)" = "0" ]; then
        echo "setup: installing libopenblas-dev (LAPACK for ndarray-linalg)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev >/dev/null
    else
        echo "setup: kdlab needs the OpenBLAS development library. Install it with:" >&2
        echo "    sudo apt-get install -y libopenblas-dev" >&2
        exit 1
    fi
fi

export CARGO_INCREMENTAL=0
cargo build --release --locked --quiet
