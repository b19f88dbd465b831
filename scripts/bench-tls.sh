#!/usr/bin/env bash
# What TLS costs: the same `tern bench direct` load against two standalone
# servers, one plain and one with --tls-cert (a self-signed certificate made
# here with openssl), runs alternating; prints medians and the TLS/plain
# ratio of each run.
#
#   scripts/bench-tls.sh [--runs 3] [BENCH DIRECT ARGS...]
#   scripts/bench-tls.sh --runs 3 --users 100 --duration-secs 10
#
# Loopback only; every run is bounded by --duration-secs.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
if [ "${1:-}" = --runs ]; then runs="$2"; shift 2; fi
case "${1:-}" in -h|--help) sed -n 2,10p "$0"; exit 0 ;; esac
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

cargo build --release --locked --quiet
tern=target/release/tern
dir="$(mktemp -d -t tern-bench-tls-XXXXXX)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
plain_port=17700 tls_port=17710
pids=()
cleanup() {
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

TERN_LOG=warn "$tern" serve --data-dir "$dir/plain" --listen "127.0.0.1:$plain_port" \
    --http "127.0.0.1:$((plain_port + 1))" >"$dir/plain.out" 2>&1 &
pids+=($!)
TERN_LOG=warn "$tern" serve --data-dir "$dir/tls" --listen "127.0.0.1:$tls_port" \
    --http "127.0.0.1:$((tls_port + 1))" --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" \
    >"$dir/tls.out" 2>&1 &
pids+=($!)
for f in plain tls; do
    for _ in $(seq 1 100); do grep -q "stop with ctrl-c" "$dir/$f.out" && break; sleep 0.1; done
done

fields=(.stored_per_sec .delivered_per_sec .send_to_push.p50_ms .send_to_push.p99_ms)
for i in $(seq 1 "$runs"); do
    TERN_LOG=warn "$tern" bench direct --addr "127.0.0.1:$plain_port" "$@" --json \
        >>"$dir/plain.json" 2>>"$dir/plain.err"
    TERN_LOG=warn "$tern" bench --tls-ca "$dir/cert.pem" direct --addr "127.0.0.1:$tls_port" "$@" --json \
        >>"$dir/tls.json" 2>>"$dir/tls.err"
    echo "run $i/$runs: plain $(tail -1 "$dir/plain.json" | jq .stored_per_sec); tls $(tail -1 "$dir/tls.json" | jq .stored_per_sec)" >&2
done

median() {
    sort -g | awk '{a[NR]=$1} END {v=a[int((NR+1)/2)]; if (v >= 100) printf "%.0f", v; else printf "%.3g", v}'
}
printf '\ntern bench direct %s, plain vs TLS, median of %d runs (runs alternate); JSON in %s\n\n' "$*" "$runs" "$dir"
printf '| figure | plain | TLS | TLS / plain (per run) |\n|---|---|---|---|\n'
for f in "${fields[@]}"; do
    ratios="$(paste <(jq "$f" "$dir/tls.json") <(jq "$f" "$dir/plain.json") |
        awk '{printf "%s%.2f", (NR > 1 ? " / " : ""), ($2 == 0 ? 0 : $1 / $2)}')"
    printf '| `%s` | %s | %s | %s |\n' "$f" "$(jq "$f" "$dir/plain.json" | median)" \
        "$(jq "$f" "$dir/tls.json" | median)" "$ratios"
done
