#!/usr/bin/env bash
# What a feature costs on the hot path: the same `tern bench direct` load
# against two standalone servers that differ only in it, runs alternating;
# prints medians and the with/without ratio of each run.
#
#   scripts/bench-compare.sh tls|limiter [--runs 3] [BENCH DIRECT ARGS...]
#   scripts/bench-compare.sh tls --runs 3 --users 100 --duration-secs 10
#
# tls:     plain TCP vs --tls-cert (a self-signed certificate made here with
#          openssl); the bench connects with --tls-ca.
# limiter: per-connection frame and byte budgets off (0) vs on, set so high
#          that nothing is refused: the cost of checking them.
# Loopback only; every run is bounded by --duration-secs.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    tls|limiter) what="$1"; shift ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) sed -n 2,15p "$0" >&2; exit 2 ;;
esac
runs=3
if [ "${1:-}" = --runs ]; then runs="$2"; shift 2; fi
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

cargo build --release --locked --quiet
tern=target/release/tern
dir="$(mktemp -d -t tern-bench-$what-XXXXXX)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
a_port=17700 b_port=17710
pids=()
cleanup() {
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# a = without, b = with; the client flags each bench run needs.
# Benchmarks push single connections and users past the default budgets.
high=(--frames-per-second 1000000 --bytes-per-second 1000000000 --user-sends-per-second 0
    --login-attempts-per-user-per-minute 0 --auth-attempts-per-address-per-minute 0
    --connections-per-address 0)
if [ "$what" = tls ]; then
    a_name=plain b_name=TLS
    a_flags=("${high[@]}") b_flags=("${high[@]}" --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem")
    a_client=() b_client=(--tls-ca "$dir/cert.pem")
else
    a_name="budgets off" b_name="budgets on"
    a_flags=(--frames-per-second 0 --bytes-per-second 0 --user-sends-per-second 0
        --login-attempts-per-user-per-minute 0 --auth-attempts-per-address-per-minute 0
        --connections-per-address 0)
    b_flags=("${high[@]}")
    a_client=() b_client=()
fi
TERN_LOG=warn "$tern" serve --data-dir "$dir/a" --listen "127.0.0.1:$a_port" \
    --http "127.0.0.1:$((a_port + 1))" "${a_flags[@]}" >"$dir/a.out" 2>&1 &
pids+=($!)
TERN_LOG=warn "$tern" serve --data-dir "$dir/b" --listen "127.0.0.1:$b_port" \
    --http "127.0.0.1:$((b_port + 1))" "${b_flags[@]}" >"$dir/b.out" 2>&1 &
pids+=($!)
for f in a b; do
    for _ in $(seq 1 100); do grep -q "stop with ctrl-c" "$dir/$f.out" && break; sleep 0.1; done
done

fields=(.stored_per_sec .delivered_per_sec .send_to_push.p50_ms .send_to_push.p99_ms)
for i in $(seq 1 "$runs"); do
    TERN_LOG=warn "$tern" bench "${a_client[@]}" direct --addr "127.0.0.1:$a_port" "$@" --json \
        >>"$dir/a.json" 2>>"$dir/a.err" || { echo "$a_name run $i failed; see $dir/a.err" >&2; exit 1; }
    TERN_LOG=warn "$tern" bench "${b_client[@]}" direct --addr "127.0.0.1:$b_port" "$@" --json \
        >>"$dir/b.json" 2>>"$dir/b.err" || { echo "$b_name run $i failed; see $dir/b.err" >&2; exit 1; }
    echo "run $i/$runs: $a_name $(tail -1 "$dir/a.json" | jq .stored_per_sec); $b_name $(tail -1 "$dir/b.json" | jq .stored_per_sec)" >&2
done

median() {
    sort -g | awk '{a[NR]=$1} END {v=a[int((NR+1)/2)]; if (v >= 100) printf "%.0f", v; else printf "%.3g", v}'
}
printf '\ntern bench direct %s, %s vs %s, median of %d runs (runs alternate); JSON in %s\n\n' \
    "$*" "$a_name" "$b_name" "$runs" "$dir"
printf '| figure | %s | %s | %s / %s (per run) |\n|---|---|---|---|\n' "$a_name" "$b_name" "$b_name" "$a_name"
for f in "${fields[@]}"; do
    ratios="$(paste <(jq "$f" "$dir/b.json") <(jq "$f" "$dir/a.json") |
        awk '{printf "%s%.2f", (NR > 1 ? " / " : ""), ($2 == 0 ? 0 : $1 / $2)}')"
    printf '| `%s` | %s | %s | %s |\n' "$f" "$(jq "$f" "$dir/a.json" | median)" \
        "$(jq "$f" "$dir/b.json" | median)" "$ratios"
done
