#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time on its committed corpus
# (fuzz/corpus/<target>); fails when any input crashes, with the input left
# in fuzz/artifacts/<target>/. A crash found this way goes into the corpus
# once fixed, so every later run replays it.
#
#   scripts/fuzz.sh                  # each target 60 s
#   FUZZ_SECONDS=600 scripts/fuzz.sh # longer
#   scripts/fuzz.sh payloads         # one target
#
# Targets: frame_decoder (the TLV decoder), payloads (every protobuf message
# a tern process decodes from outside), connection (arbitrary frame
# sequences against an in-process standalone server).
#
# cargo fuzz passes rustc flags (sanitizer coverage, AddressSanitizer) that
# only nightly accepts; RUSTC_BOOTSTRAP=1 lets this machine's one stable
# toolchain take them.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECONDS:-60}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame_decoder payloads connection)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${secs} s"
    mkdir -p "corpus/$t"
    cargo fuzz build "$t"
    # New inputs go to a scratch directory; the committed corpus only seeds.
    scratch="$(mktemp -d -t "tern-fuzz-$t-XXXXXX")"
    log="$scratch.log"
    status=0
    # Protobuf messages need no more than 256 bytes to reach every branch.
    max_len=4096
    [ "$t" = payloads ] && max_len=256
    cargo fuzz run "$t" "$scratch" "corpus/$t" -- \
        -max_total_time="$secs" -max_len="$max_len" -timeout=30 -rss_limit_mb=4096 >"$log" 2>&1 || status=$?
    grep -E "^Done [0-9]+ runs" "$log" || true
    rm -rf "$scratch"
    if [ "$status" -ne 0 ]; then
        tail -60 "$log" >&2
        echo "fuzz target $t failed (exit $status); the input is in fuzz/artifacts/$t/" >&2
        exit "$status"
    fi
    rm -f "$log"
done
