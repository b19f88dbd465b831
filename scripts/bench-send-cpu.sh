#!/usr/bin/env bash
# Standalone server CPU per one-to-one message, two tern binaries compared.
# Each run starts a fresh standalone server (new data directory, every
# budget off, --send-policy open) from binary A or B in turn (A, B, A, B,
# ...), so both see the same noisy machine, and `tern bench direct
# --server-pid` reports the server's CPU time over the sending window per
# stored message. Prints each run, then the medians and the B/A ratios of
# CPU per message and of send->push p50/p99.
#
#   scripts/bench-send-cpu.sh [--runs 5] [--port 7400] BINARY_A BINARY_B [BENCH DIRECT ARGS...]
#   scripts/bench-send-cpu.sh --runs 5 /tmp/tern-base target/release/tern
#   scripts/bench-send-cpu.sh --runs 5 /tmp/tern-base target/release/tern \
#       --users 400 --friends 0 --duration-secs 10 --rate 3000
#
# BENCH DIRECT ARGS default to --users 400 --friends 0 --duration-secs 10.
# Loopback only; every run is bounded by --duration-secs. The bench client
# is always binary B's.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

runs=5 port=7400 usage_end=17 bench_args=(--users 400 --friends 0 --duration-secs 10)
two_binaries "$@"
set -- "${bench_args[@]}"

dir="$(mktemp -d -t tern-bench-send-XXXXXX)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$dir"' EXIT

# One run of binary $1 (label $2): prints "label cpu_us p50_ms p99_ms rate".
run_one() {
    local bin="$1" label="$2" attempt out
    shift 2
    for attempt in 1 2 3; do
        rm -rf "$dir/data"
        "$bin" --data-dir "$dir/data" --listen "127.0.0.1:$port" --http 127.0.0.1:0 \
            --send-policy open --frames-per-second 1000000 --bytes-per-second 1000000000 \
            --user-sends-per-second 0 --login-attempts-per-user-per-minute 0 \
            --auth-attempts-per-address-per-minute 0 --connections-per-address 0 \
            >"$dir/server.log" 2>&1 &
        server=$!
        for _ in $(seq 150); do
            grep -q "clients (" "$dir/server.log" && break
            sleep 0.2
        done
        out="$("$bin_b" bench direct --addr "127.0.0.1:$port" --server-pid "$server" --json "$@" \
            2>"$dir/bench.err" || true)"
        kill "$server"; wait "$server" 2>/dev/null || true; server=""
        if [ -n "$out" ] && echo "$out" | jq -e '.server_cpu_us_per_msg' >/dev/null 2>&1; then
            echo "$out" | jq -r --arg l "$label" \
                '[$l, .server_cpu_us_per_msg, .send_to_push.p50_ms, .send_to_push.p99_ms, .stored_per_sec] | @tsv'
            return 0
        fi
        echo "run $label failed (attempt $attempt): $(tail -1 "$dir/bench.err")" >&2
    done
    return 1
}

: >"$dir/runs"
for i in $(seq "$runs"); do
    run_one "$bin_a" A "$@" | tee -a "$dir/runs"
    run_one "$bin_b" B "$@" | tee -a "$dir/runs"
done
for col in 2 3 4 5; do
    a=$(awk -v c=$col '$1=="A" {print $c}' "$dir/runs" | median)
    b=$(awk -v c=$col '$1=="B" {print $c}' "$dir/runs" | median)
    name=$(echo "cpu_us_per_msg push_p50_ms push_p99_ms stored_per_sec" | cut -d' ' -f$((col-1)))
    printf '%-16s A %10.2f  B %10.2f  B/A %.2f\n' "$name" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
