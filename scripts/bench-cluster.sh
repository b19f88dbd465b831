#!/usr/bin/env bash
# Same one-to-one load against standalone (SQLite) and a cluster (2 connect
# + 2 logic on MariaDB, Redis, NATS; scripts/cluster.sh), alternating runs
# so both see the same machine, then medians side by side.
#
#   scripts/bench-cluster.sh [--runs 3] [--users 100] [--duration-secs 10]
#
# Loopback only; every run is bounded by --duration-secs.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 users=100 duration=10
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --users) users="$2"; shift 2 ;;
        --duration-secs) duration="$2"; shift 2 ;;
        -h|--help) sed -n 2,8p "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

cargo build --release --locked --quiet
tern=target/release/tern
dir="$(mktemp -d -t tern-bench-XXXXXX)"
standalone_port=17300 cluster_port=17500
pids=()
cleanup() {
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

TERN_LOG=warn "$tern" serve --data-dir "$dir/standalone" --listen "127.0.0.1:$standalone_port" --http 127.0.0.1:0 \
    --send-policy open >"$dir/standalone.out" 2>&1 &
pids+=($!)
TERN_SEND_POLICY=open scripts/cluster.sh --dir "$dir/cluster" --port "$cluster_port" \
    >"$dir/cluster.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
    grep -q "stop with ctrl-c" "$dir/cluster.out" 2>/dev/null && break
    sleep 0.2
done
grep -q "stop with ctrl-c" "$dir/cluster.out" || { cat "$dir/cluster.out" >&2; exit 1; }

# One run: stored/s delivered/s push-p50 push-p99 (from tern bench's summary).
one() {
    "$tern" bench direct --addr "$1" --users "$users" --duration-secs "$duration" 2>/dev/null |
        awk '/^stored:/ {gsub(/[(]/, "", $3); s=$3}
             /^delivered/ {gsub(/[(]/, "", $4); d=$4}
             /^send -> push:/ {p50=$5; p99=$11}
             END {print s, d, p50, p99}'
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$dir/standalone.runs"
: >"$dir/cluster.runs"
for i in $(seq 1 "$runs"); do
    one "127.0.0.1:$standalone_port" >>"$dir/standalone.runs"
    one "127.0.0.1:$cluster_port,127.0.0.1:$((cluster_port + 1))" >>"$dir/cluster.runs"
    echo "run $i/$runs: standalone $(tail -1 "$dir/standalone.runs"); cluster $(tail -1 "$dir/cluster.runs")" >&2
done

printf '\n%d users, %d s per run, median of %d runs (runs alternate)\n\n' "$users" "$duration" "$runs"
printf '| setup | stored/s | delivered/s | send→push p50 ms | send→push p99 ms |\n|---|---|---|---|---|\n'
for setup in standalone cluster; do
    f="$dir/$setup.runs"
    printf '| %s | %s | %s | %s | %s |\n' "$setup" \
        "$(cut -d' ' -f1 "$f" | median)" "$(cut -d' ' -f2 "$f" | median)" \
        "$(cut -d' ' -f3 "$f" | median)" "$(cut -d' ' -f4 "$f" | median)"
done
echo
echo "per run (stored/s delivered/s p50 p99): standalone: $(tr '\n' ';' <"$dir/standalone.runs")"
echo "                                         cluster:    $(tr '\n' ';' <"$dir/cluster.runs")"
