#!/usr/bin/env bash
# Cluster CPU per one-to-one message, two tern binaries compared: each gets
# its own cluster (scripts/cluster.sh: 2 connect + 2 logic on MariaDB,
# Redis and NATS), both up at once, and `tern bench direct` runs against
# them alternately (A, B, A, B, ...), so both see the same noisy machine.
# The figure is the CPU time of every process of the cluster (both connect
# and logic nodes, mariadbd, redis-server, nats-server) over the sending
# window, divided by the messages stored in it; the bench sums the
# processes itself (--server-pid takes them all). Prints each run, then the
# medians, the B/A ratio and where the CPU went, per process.
#
#   scripts/bench-cluster-cpu.sh [--runs 5] [--port 7600] BINARY_A BINARY_B [BENCH DIRECT ARGS...]
#   scripts/bench-cluster-cpu.sh --runs 5 /tmp/tern-base target/release/tern
#
# BENCH DIRECT ARGS default to --users 400 --friends 0 --duration-secs 20.
# Ports: A on BASE, BASE+1 (clients), BASE+10..12 (MariaDB, Redis, NATS),
# BASE+80..81 (HTTP); B on BASE+20.., HTTP BASE+90..91. Loopback only;
# every run is bounded by --duration-secs. The same binary twice measures
# the noise.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

runs=5 port=7600 usage_end=19 bench_args=(--users 400 --friends 0 --duration-secs 20)
two_binaries "$@"
set -- "${bench_args[@]}"
base=$port

dir="$(mktemp -d -t tern-bench-cpu-XXXXXX)"
pids=()
cleanup() {
    trap - EXIT INT TERM
    # cluster.sh stops its own processes on SIGTERM.
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Every budget off (as in the issue's measurement), anyone may send to anyone.
export TERN_FRAMES_PER_SECOND=0 TERN_BYTES_PER_SECOND=0 TERN_USER_SENDS_PER_SECOND=0 \
    TERN_LOGIN_ATTEMPTS_PER_USER_PER_MINUTE=0 TERN_AUTH_ATTEMPTS_PER_ADDRESS_PER_MINUTE=0 \
    TERN_CONNECTIONS_PER_ADDRESS=0 TERN_SEND_POLICY=open TERN_LOG=warn
# One after the other: two mariadb-install-db at once collide on their
# temporary tables.
for s in a b; do
    if [ $s = a ]; then port=$base http=$((base + 80)) bin=$bin_a; else port=$((base + 20)) http=$((base + 90)) bin=$bin_b; fi
    scripts/cluster.sh --dir "$dir/$s" --port "$port" --http-port "$http" --tern "$bin" >"$dir/$s.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 3000); do grep -qs "stop with ctrl-c" "$dir/$s.out" && break; sleep 0.2; done
    grep -qs "stop with ctrl-c" "$dir/$s.out" || { echo "cluster $s did not start:" >&2; cat "$dir/$s.out" >&2; exit 1; }
done
# cluster.sh's "pids:" line: mariadbd redis nats logic1 logic2 connect1 connect2.
names=(mariadbd redis nats logic1 logic2 connect1 connect2)
read -r -a pids_a <<<"$(awk '/pids:/ {$1 = ""; print}' "$dir/a.out")"
read -r -a pids_b <<<"$(awk '/pids:/ {$1 = ""; print}' "$dir/b.out")"
[ ${#pids_a[@]} -eq 7 ] && [ ${#pids_b[@]} -eq 7 ] || { echo "expected 7 pids per cluster" >&2; exit 1; }
addr_a="127.0.0.1:$base,127.0.0.1:$((base + 1))"
addr_b="127.0.0.1:$((base + 20)),127.0.0.1:$((base + 21))"

# utime + stime (ticks) of each pid, space separated.
ticks() {
    local p
    for p in "$@"; do
        awk '{sub(/.*\) /, ""); printf "%d ", $12 + $13}' "/proc/$p/stat"
    done
}

echo "A = $bin_a, B = $bin_b; tern bench direct $*; JSON and logs in $dir" >&2
for i in $(seq 1 "$runs"); do
    for s in a b; do
        if [ $s = a ]; then p=("${pids_a[@]}") addr=$addr_a; else p=("${pids_b[@]}") addr=$addr_b; fi
        before="$(ticks "${p[@]}")"
        "$( [ $s = a ] && echo "$bin_a" || echo "$bin_b")" bench direct --addr "$addr" "$@" \
            --server-pid "$(IFS=,; echo "${p[*]}")" --json >>"$dir/$s.json" 2>>"$dir/$s.err" ||
            { echo "run $i of $s failed; see $dir/$s.err and $dir/$s/" >&2; exit 1; }
        after="$(ticks "${p[@]}")"
        # Per-process ticks of this run (whole run, setup included: a split, not the figure).
        paste <(tr ' ' '\n' <<<"$before") <(tr ' ' '\n' <<<"$after") | awk 'NF == 2 {printf "%d ", $2 - $1}' \
            >>"$dir/$s.split"
        echo >>"$dir/$s.split"
    done
    echo "run $i/$runs: A $(tail -1 "$dir/a.json" | jq -c '[.server_cpu_us_per_msg, .stored_per_sec, .lost, .duplicated]')" \
        "B $(tail -1 "$dir/b.json" | jq -c '[.server_cpu_us_per_msg, .stored_per_sec, .lost, .duplicated]')" >&2
done

ma="$(jq -r .server_cpu_us_per_msg "$dir/a.json" | median | xargs printf %.1f)"
mb="$(jq -r .server_cpu_us_per_msg "$dir/b.json" | median | xargs printf %.1f)"
ratios="$(paste <(jq -r .server_cpu_us_per_msg "$dir/b.json") <(jq -r .server_cpu_us_per_msg "$dir/a.json") |
    awk '{printf "%s%.2f", (NR > 1 ? " " : ""), $1 / $2}')"
printf '\ncluster CPU µs per stored message, median of %d (alternating): A %s, B %s, B/A %.2f (per run: %s)\n' \
    "$runs" "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN {print b / a}')" "$ratios"
printf 'stored per second, median: A %s, B %s\n' \
    "$(jq -r .stored_per_sec "$dir/a.json" | median | xargs printf %.1f)" \
    "$(jq -r .stored_per_sec "$dir/b.json" | median | xargs printf %.1f)"
printf 'share of the CPU per process (whole runs, setup included):\n'
for s in a b; do
    awk -v s="${s^^}" -v names="${names[*]}" 'BEGIN {split(names, n, " ")}
        {for (k = 1; k <= NF; k++) {t[k] += $k; all += $k}}
        END {printf "  %s:", s; for (k = 1; k <= 7; k++) printf " %s %.0f%%", n[k], 100 * t[k] / all; print ""}' \
        "$dir/$s.split"
done
