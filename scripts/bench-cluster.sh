#!/usr/bin/env bash
# One `tern bench` scenario against standalone (SQLite) and a cluster (2
# connect + 2 logic on MariaDB, Redis, NATS; scripts/cluster.sh), runs
# alternating so both see the same machine; prints medians side by side and
# the cluster/standalone ratio of each run's headline figure.
#
#   scripts/bench-cluster.sh [--runs 3] [--before "SCENARIO ARGS"] SCENARIO [BENCH ARGS...]
#   scripts/bench-cluster.sh --runs 3 direct --users 100 --duration-secs 10
#   scripts/bench-cluster.sh group --sizes 10,100,1000 --messages 100
#   scripts/bench-cluster.sh --before "direct --users 800 --duration-secs 1" \
#       http --path '/api/v1/users?limit=20'
#
# The script gives each scenario its addresses (--addr, --http,
# --admin-token, --server-pid) and --json; BENCH ARGS are the rest.
# --before runs another scenario once on each setup first (unmeasured),
# e.g. to fill the database. Every
# run's JSON is kept in the printed directory. Loopback only; every run is
# bounded by the bench's own limits.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

runs=3 before=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --before) before="$2"; shift 2 ;;
        -h|--help) sed -n 2,19p "$0"; exit 0 ;;
        -*) echo "unknown argument $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { sed -n 2,19p "$0" >&2; exit 2; }
scenario="$1"; shift
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

# The figures compared, as jq paths into the scenario's --json, headline first.
case "$scenario" in
    direct) fields=(.stored_per_sec .delivered_per_sec .send_to_push.p50_ms .send_to_push.p99_ms .send_to_reply.p50_ms) ;;
    group) fields=('.groups[].deliveries_per_sec' '.groups[].send_to_push.p50_ms' '.groups[].send_to_push.p99_ms') ;;
    sync) fields=(.catch_up_per_sec .one_page.start.p50_ms .one_page.end.p50_ms) ;;
    room) fields=(.deliveries_per_sec .post_to_room_push.p50_ms .post_to_room_push.p99_ms) ;;
    http) fields=(.requests_per_sec .latency.p50_ms .latency.p99_ms) ;;
    connections) fields=(.rss_per_connection_bytes .connect_per_sec) ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac

cargo build --release --locked --quiet
tern=target/release/tern
dir="$(mktemp -d -t tern-bench-XXXXXX)"
standalone_port=17300 cluster_port=17500
token="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
pids=()
cleanup() {
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Benchmarks push single connections past the default frame budget.
export TERN_FRAMES_PER_SECOND=1000000 TERN_BYTES_PER_SECOND=1000000000 TERN_USER_SENDS_PER_SECOND=0 \
    TERN_LOGIN_ATTEMPTS_PER_USER_PER_MINUTE=0 TERN_AUTH_ATTEMPTS_PER_ADDRESS_PER_MINUTE=0 \
    TERN_CONNECTIONS_PER_ADDRESS=0
TERN_LOG=warn TERN_ADMIN_TOKEN="$token" "$tern" serve --data-dir "$dir/standalone" \
    --listen "127.0.0.1:$standalone_port" --http "127.0.0.1:$((standalone_port + 80))" \
    --send-policy open >"$dir/standalone.out" 2>&1 &
standalone_pid=$!
pids+=($!)
TERN_SEND_POLICY=open TERN_ADMIN_TOKEN="$token" scripts/cluster.sh --dir "$dir/cluster" --port "$cluster_port" \
    >"$dir/cluster.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
    grep -q "stop with ctrl-c" "$dir/cluster.out" 2>/dev/null && break
    sleep 0.2
done
grep -q "stop with ctrl-c" "$dir/cluster.out" || { cat "$dir/cluster.out" >&2; exit 1; }
# cluster.sh starts mariadb, redis, nats, logic1, logic2, connect1, connect2.
connect1_pid="$(awk '/pids:/ {print $7}' "$dir/cluster.out")"

# The address flags of scenario $2 for setup $1: standalone or cluster.
where() {
    local s=$1 scenario=$2
    local addr http pid
    if [ "$s" = standalone ]; then
        addr="127.0.0.1:$standalone_port" http="127.0.0.1:$((standalone_port + 80))" pid=$standalone_pid
    else
        addr="127.0.0.1:$cluster_port" http="127.0.0.1:$((cluster_port + 80))" pid=$connect1_pid
    fi
    case "$scenario" in
        direct|group)
            [ "$s" = cluster ] && addr="$addr,127.0.0.1:$((cluster_port + 1))"
            echo --addr "$addr" ;;
        sync) echo --addr "$addr" ;;
        room) echo --addr "$addr" --http "$http" --admin-token "$token" ;;
        http) echo --http "$http" --admin-token "$token" ;;
        connections) echo --addr "$addr" --server-pid "$pid" ;;
    esac
}

if [ -n "$before" ]; then
    read -r -a first <<<"$before"
    for s in standalone cluster; do
        # shellcheck disable=SC2046 # where's words are flags
        TERN_LOG=warn "$tern" bench "${first[0]}" $(where "$s" "${first[0]}") "${first[@]:1}" \
            >>"$dir/before.out" 2>&1 || { echo "--before failed; see $dir/before.out" >&2; exit 1; }
    done
fi

for i in $(seq 1 "$runs"); do
    for s in standalone cluster; do
        # shellcheck disable=SC2046 # where's words are flags
        TERN_LOG=warn "$tern" bench "$scenario" $(where "$s" "$scenario") "$@" --json \
            >>"$dir/$s.json" 2>>"$dir/$s.err" ||
            { echo "$s run $i failed; see $dir/$s.err" >&2; exit 1; }
    done
    echo "run $i/$runs: standalone $(jq -c "[${fields[0]}]" <(tail -1 "$dir/standalone.json")); cluster $(jq -c "[${fields[0]}]" <(tail -1 "$dir/cluster.json"))" >&2
done

# Column k of field f over the runs of a setup (fields like .groups[] give several).
values() { jq -r "[$2] | .[$3]" "$dir/$1.json"; }
columns() { jq -r "[$1] | length" <(head -1 "$dir/standalone.json"); }

printf '\ntern bench %s %s, median of %d runs (runs alternate); JSON in %s\n\n' "$scenario" "$*" "$runs" "$dir"
printf '| figure | standalone | cluster | cluster / standalone (per run) |\n|---|---|---|---|\n'
for f in "${fields[@]}"; do
    for ((k = 0; k < $(columns "$f"); k++)); do
        a="$(values standalone "$f" "$k" | median_rounded)"
        b="$(values cluster "$f" "$k" | median_rounded)"
        ratios="$(paste <(values cluster "$f" "$k") <(values standalone "$f" "$k") |
            awk '{printf "%s%.2f", (NR > 1 ? " / " : ""), ($2 == 0 ? 0 : $1 / $2)}')"
        label="$f"
        [ "$(columns "$f")" -gt 1 ] && label="$f [$k]" # the k-th group size, etc.
        printf '| `%s` | %s | %s | %s |\n' "$label" "$a" "$b" "$ratios"
    done
done
