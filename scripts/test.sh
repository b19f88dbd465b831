#!/usr/bin/env bash
# Runs every check and test of the workspace. This is the README's test
# command and what CI (.ci/run) calls.
#
# Installs what the tests need when it is missing (a Rust toolchain is
# assumed). Tests that need MariaDB, Redis or NATS start their own servers on a free
# loopback port through the shared test helper (testkit/); this script only
# makes sure the server binaries are installed (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

# Debian packages for server binaries the tests start.
missing=()
need mariadbd || missing+=(mariadb-server)
need redis-server || missing+=(redis-server)
need nats-server || missing+=(nats-server)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

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
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo deny (licenses, bans, sources; advisories from GitHub or the snapshot bundle)"
scripts/deny.sh
echo "== cargo test"
# The soak runs once, at full length, below.
cargo test --workspace --locked -- --skip soak_
echo "== soak (${TERN_SOAK_SECS:-600} s, both shapes at once)"
scripts/soak.sh --secs "${TERN_SOAK_SECS:-600}"
echo "== schemathesis (admin API against its OpenAPI document)"
TERN_BIN="${CARGO_TARGET_DIR:-target}/debug/tern" scripts/schemathesis.sh
echo "== fuzz (each target ${FUZZ_SECONDS:-60} s on its committed corpus)"
scripts/fuzz.sh
