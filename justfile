# kdlab tasks. `just study` and `just test` do their own set-up on a fresh machine.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Run every study in studies/ (or the named ones) into reports/.
study *ARGS: setup
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -z "{{ARGS}}" ]; then
        target/release/kdlab study --all
    else
        target/release/kdlab study {{ARGS}}
    fi

# Unit, known-answer and theory tests (release build: debug runs 20-60x slower).
test: setup
    cargo test --release --locked

# Benchmarks against the reference Python implementations (throwaway venv under target/).
bench: setup
    scripts/bench-forest.sh

# Validate a study file without running it.
check STUDY: setup
    target/release/kdlab check {{STUDY}}

# System library, then the release build.
setup:
    scripts/setup.sh
