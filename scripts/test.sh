#!/usr/bin/env bash
# Runs every check and test of the workspace. This is the README's test
# command and what CI (.ci/run) calls.
#
# Installs what the tests need when it is missing (a Rust toolchain is
# assumed). Integration tests that need MariaDB, Redis or NATS start their
# own servers on free loopback ports through the shared test helper; the
# packages they need are installed here when those suites exist.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
    echo "scripts/test.sh: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
if ! cargo fmt --version >/dev/null 2>&1 && need rustup; then
    rustup component add rustfmt
fi
if ! cargo clippy --version >/dev/null 2>&1 && need rustup; then
    rustup component add clippy
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
