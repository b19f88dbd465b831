#!/usr/bin/env bash
# What a feature costs on the hot path: the same `tern bench direct` load
# against two setups that differ only in it, runs alternating; prints
# medians and the with/without ratio of each run.
#
#   scripts/bench-compare.sh [--cluster] tls|limiter|send-limiter [--runs 3] [BENCH DIRECT ARGS...]
#   scripts/bench-compare.sh tls --runs 3 --users 100 --duration-secs 10
#   scripts/bench-compare.sh --cluster send-limiter --runs 3 --users 100 --duration-secs 10
#
# tls:          plain TCP vs --tls-cert (a self-signed certificate made here
#               with openssl); the bench connects with --tls-ca.
# limiter:      per-connection frame and byte budgets off (0) vs on, set so
#               high that nothing is refused: the cost of checking them.
# send-limiter: the per-user SEND count off (0) vs on, set so high that
#               nothing is refused: one map update per SEND in standalone,
#               one Redis script call per SEND in a cluster.
# --cluster:    two clusters (scripts/cluster.sh: 2 logic + 2 connect on
#               MariaDB, Redis and NATS) instead of two standalone servers;
#               the bench spreads its users over both connect nodes.
# Loopback only; every run is bounded by --duration-secs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

usage() { sed -n 2,20p "$0"; }
what="" runs=3 cluster=false
# --cluster and --runs may come before or after the mode; the first other
# argument starts the bench's own.
while [ $# -gt 0 ]; do
    case "$1" in
        tls|limiter|send-limiter) [ -z "$what" ] || break; what="$1"; shift ;;
        --runs) runs="$2"; shift 2 ;;
        --cluster) cluster=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) break ;;
    esac
done
[ -n "$what" ] || { usage >&2; exit 2; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

cargo build --release --locked --quiet
tern=target/release/tern
dir="$(mktemp -d -t tern-bench-$what-XXXXXX)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
# cluster.sh takes BASE and BASE+1 (connect), BASE+10..12 (MariaDB, Redis,
# NATS) and BASE+80..81 (logic HTTP): bases 100 apart share none.
if $cluster; then a_port=17800 b_port=17900; else a_port=17700 b_port=17710; fi
pids=()
cleanup() {
    trap - EXIT INT TERM
    # cluster.sh stops its own processes on SIGTERM.
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# a = without, b = with: the settings of each setup, and the client flags
# each bench run needs. Settings are TERN_* variables, which `tern serve`,
# `tern connect` and `tern logic` all read and cluster.sh passes on, so the
# same lists make two standalone servers or two clusters; each node takes
# the ones it has and ignores the rest.
# Benchmarks push single connections and users past the default budgets,
# and register hundreds of users from 127.0.0.1.
high=(TERN_FRAMES_PER_SECOND=1000000 TERN_BYTES_PER_SECOND=1000000000 TERN_USER_SENDS_PER_SECOND=0
    TERN_LOGIN_ATTEMPTS_PER_USER_PER_MINUTE=0 TERN_AUTH_ATTEMPTS_PER_ADDRESS_PER_MINUTE=0
    TERN_CONNECTIONS_PER_ADDRESS=0)
# Every budget off, for the limiter comparisons.
off=(TERN_FRAMES_PER_SECOND=0 TERN_BYTES_PER_SECOND=0
    TERN_LOGIN_ATTEMPTS_PER_USER_PER_MINUTE=0 TERN_AUTH_ATTEMPTS_PER_ADDRESS_PER_MINUTE=0
    TERN_CONNECTIONS_PER_ADDRESS=0)
a_client=() b_client=()
case "$what" in
    tls)
        a_name=plain b_name=TLS
        a_env=("${high[@]}") b_env=("${high[@]}" TERN_TLS_CERT="$dir/cert.pem" TERN_TLS_KEY="$dir/key.pem")
        b_client=(--tls-ca "$dir/cert.pem") ;;
    limiter)
        a_name="budgets off" b_name="budgets on"
        a_env=("${off[@]}" TERN_USER_SENDS_PER_SECOND=0) b_env=("${high[@]}") ;;
    send-limiter)
        # 1,000,000 a second per user is the highest the setting takes, far
        # above the tens a second one bench user sends.
        a_name="send limit off" b_name="send limit on"
        a_env=("${off[@]}" TERN_USER_SENDS_PER_SECOND=0)
        b_env=("${off[@]}" TERN_USER_SENDS_PER_SECOND=1000000) ;;
esac

# Starts setup $1 (a or b) on base port $2 with settings $3...; its output
# goes to $dir/$1.out, a cluster's logs to $dir/$1/.
start() {
    local s=$1 port=$2
    shift 2
    if $cluster; then
        env "$@" TERN_LOG=warn scripts/cluster.sh --dir "$dir/$s" --port "$port" >"$dir/$s.out" 2>&1 &
    else
        env "$@" TERN_LOG=warn "$tern" serve --data-dir "$dir/$s" --listen "127.0.0.1:$port" \
            --http "127.0.0.1:$((port + 1))" >"$dir/$s.out" 2>&1 &
    fi
    pids+=($!)
}
start a "$a_port" "${a_env[@]}"
start b "$b_port" "${b_env[@]}"
# A cluster's MariaDB takes a while to set up its data directory.
for f in a b; do
    for _ in $(seq 1 600); do grep -q "stop with ctrl-c" "$dir/$f.out" && break; sleep 0.2; done
    grep -q "stop with ctrl-c" "$dir/$f.out" || { echo "setup $f did not start:" >&2; cat "$dir/$f.out" >&2; exit 1; }
done
if $cluster; then
    a_addr="127.0.0.1:$a_port,127.0.0.1:$((a_port + 1))" b_addr="127.0.0.1:$b_port,127.0.0.1:$((b_port + 1))"
    where="two clusters" logs="$dir/a/ and $dir/b/"
else
    a_addr="127.0.0.1:$a_port" b_addr="127.0.0.1:$b_port" where="two standalone servers" logs="$dir/*.out"
fi

fields=(.stored_per_sec .delivered_per_sec .send_to_push.p50_ms .send_to_push.p99_ms)
for i in $(seq 1 "$runs"); do
    TERN_LOG=warn "$tern" bench "${a_client[@]}" direct --addr "$a_addr" "$@" --json \
        >>"$dir/a.json" 2>>"$dir/a.err" || { echo "$a_name run $i failed; see $dir/a.err and $logs" >&2; exit 1; }
    TERN_LOG=warn "$tern" bench "${b_client[@]}" direct --addr "$b_addr" "$@" --json \
        >>"$dir/b.json" 2>>"$dir/b.err" || { echo "$b_name run $i failed; see $dir/b.err and $logs" >&2; exit 1; }
    echo "run $i/$runs: $a_name $(tail -1 "$dir/a.json" | jq .stored_per_sec); $b_name $(tail -1 "$dir/b.json" | jq .stored_per_sec)" >&2
done

if $cluster; then
    # A logic node that cannot reach Redis skips the rate limits instead of
    # refusing, which would make "on" measure nothing: say so (a node logs
    # to stdout, which cluster.sh keeps in its .out). The script calls each
    # Redis served show that one cluster counted every SEND (presence and
    # the caches make some in both).
    if grep -q "rate counter unavailable" "$dir"/[ab]/logic*; then
        echo "warning: a logic node could not reach Redis for a rate limit; see $dir/[ab]/logic*.out" >&2
    fi
    for s in a b; do
        port=$a_port name=$a_name
        [ $s = b ] && port=$b_port name=$b_name
        calls="$(redis-cli -p $((port + 11)) info commandstats 2>/dev/null |
            awk -F '[:=,]' '/^cmdstat_eval/ {n += $3} END {print n + 0}')"
        echo "$name: $calls Redis script calls" >&2
    done
fi

printf '\ntern bench direct %s, %s, %s vs %s, median of %d runs (runs alternate); JSON in %s\n\n' \
    "$*" "$where" "$a_name" "$b_name" "$runs" "$dir"
printf '| figure | %s | %s | %s / %s (per run) |\n|---|---|---|---|\n' "$a_name" "$b_name" "$b_name" "$a_name"
for f in "${fields[@]}"; do
    ratios="$(paste <(jq "$f" "$dir/b.json") <(jq "$f" "$dir/a.json") |
        awk '{printf "%s%.2f", (NR > 1 ? " / " : ""), ($2 == 0 ? 0 : $1 / $2)}')"
    printf '| `%s` | %s | %s | %s |\n' "$f" "$(jq "$f" "$dir/a.json" | median_rounded)" \
        "$(jq "$f" "$dir/b.json" | median_rounded)" "$ratios"
done
