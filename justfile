# Every routine task by name. Each recipe is a plain cargo command.

# A node on ./.pigeon with the example actors.
up:
    cargo run --release -- up --demo

# The whole test suite (builds the guest components first).
test:
    cargo test --workspace

# The dashboard's browser tests (headless Chromium; writes docs/img/*.png).
ui-test:
    cargo test -p pigeon-tests --test dashboard

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo fmt --manifest-path guest-examples/Cargo.toml --all -- --check
    cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Benchmarks, with the disk's ceilings measured in the same run.
bench:
    cargo run --release -p pigeon-bench

# The chaos soak: every kind of traffic through the API for DURATION while
# the node is SIGKILLed KILLS times at random moments, then every invariant
# (acknowledged effects applied exactly once, money conserved, queues
# drained, no dead letters). Prints the figures; docs/operations.md has the
# acceptance run's.
soak duration="10m" kills="100":
    cargo run --release -p pigeon-tests --bin pigeon-soak -- --duration {{duration}} --kills {{kills}}

# Builds the example guests to guest-examples/target/wasm32-wasip2/release/*.wasm.
guests:
    cd guest-examples && cargo build --release --target wasm32-wasip2

# Fuzzes every target for SECONDS each (cargo-fuzz on the stable toolchain,
# `--sanitizer none`; `cargo install cargo-fuzz` first). New inputs that
# reach new code join fuzz/corpus/ (kept in the repository); a crash is
# written to fuzz/artifacts/ with the command that replays it.
fuzz seconds="60":
    for target in filter wave codec records http; do \
        cargo fuzz run --sanitizer none "$target" -- -max_total_time={{seconds}} -max_len=4096 || exit 1; \
    done
