#!/usr/bin/env bash
# Starts the docker-compose topology from locally installed binaries, all on
# loopback: MariaDB, Redis and NATS, then 2 `tern logic` and 2 `tern connect`
# nodes wired by the same TERN_* variables docker-compose.yml sets.
#
#   scripts/cluster.sh [--dir DIR] [--port BASE] [--http-port HTTP] [--tern BINARY]
#
# Clients connect to 127.0.0.1:BASE and BASE+1 (default 7400, 7401); logic
# HTTP is on HTTP and HTTP+1 (default BASE+80, BASE+81); MariaDB, Redis and
# NATS on BASE+10..12. --tern runs that binary (e.g. an older build, to
# compare) instead of building target/release/tern. Everything stops on
# ctrl-c or SIGTERM; the line "pids:" lists MariaDB, Redis, NATS, both
# logic and both connect nodes, in that order.
# Needs the Debian packages mariadb-server, redis-server and nats-server.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=""
base=7400
http=""
tern=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir="$2"; shift 2 ;;
        --port) base="$2"; shift 2 ;;
        --http-port) http="$2"; shift 2 ;;
        --tern) tern="$2"; shift 2 ;;
        -h|--help) sed -n 2,15p "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$dir" ] || dir="$(mktemp -d -t tern-cluster-XXXXXX)"
[ -n "$http" ] || http=$((base + 80))
mkdir -p "$dir"

for bin in mariadbd mariadb-install-db redis-server nats-server; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || {
        echo "$bin not found: apt-get install mariadb-server redis-server nats-server" >&2
        exit 1
    }
done
PATH="$PATH:/usr/sbin"

mysql_port=$((base + 10))
redis_port=$((base + 11))
nats_port=$((base + 12))
pids=()
cleanup() {
    trap - EXIT INT TERM
    # tern nodes first, and waited for: they drain through NATS and commit
    # through MariaDB, so the services stop only after them.
    for ((i = ${#pids[@]} - 1; i >= 3; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
    for ((i = ${#pids[@]} - 1; i >= 3; i--)); do wait "${pids[$i]}" 2>/dev/null || true; done
    for ((i = 2; i >= 0 && i < ${#pids[@]}; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1; see $dir/*.log" >&2
    exit 1
}

root=()
[ "$(id -u)" -ne 0 ] || root=(--user=root)
if [ ! -d "$dir/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$dir/mysql" --auth-root-authentication-method=normal \
        --skip-test-db "${root[@]}" >"$dir/mysql-install.log" 2>&1
fi
mariadbd --no-defaults --datadir="$dir/mysql" --port="$mysql_port" --bind-address=127.0.0.1 \
    --socket="$dir/mysql.sock" --pid-file="$dir/mysql.pid" --log-error="$dir/mysql.log" \
    --skip-grant-tables --skip-name-resolve --max-connections=1000 "${root[@]}" &
pids+=($!)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    >"$dir/redis.log" 2>&1 &
pids+=($!)
nats-server -a 127.0.0.1 -p "$nats_port" >"$dir/nats.log" 2>&1 &
pids+=($!)
wait_port "$mysql_port"
wait_port "$redis_port"
wait_port "$nats_port"
mariadb --protocol=tcp -h 127.0.0.1 -P "$mysql_port" -u root -e "CREATE DATABASE IF NOT EXISTS tern"

if [ -z "$tern" ]; then
    cargo build --release --locked --quiet
    tern=target/release/tern
fi
export TERN_NATS_URL="nats://127.0.0.1:$nats_port"
export TERN_DATABASE_URL="mysql://root@127.0.0.1:$mysql_port/tern"
export TERN_REDIS_URL="redis://127.0.0.1:$redis_port"
export TERN_LOG="${TERN_LOG:-warn}"
export TERN_ADMIN_TOKEN="${TERN_ADMIN_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"

for i in 0 1; do
    TERN_HTTP_LISTEN="127.0.0.1:$((http + i))" TERN_NODE_ID="logic$((i + 1))" \
        "$tern" logic >"$dir/logic$((i + 1)).out" 2>"$dir/logic$((i + 1)).log" &
    pids+=($!)
done
wait_port "$http"
wait_port $((http + 1))
for i in 0 1; do
    TERN_LISTEN="127.0.0.1:$((base + i))" \
        "$tern" connect >"$dir/connect$((i + 1)).out" 2>"$dir/connect$((i + 1)).log" &
    pids+=($!)
done
wait_port "$base"
wait_port $((base + 1))

echo "tern cluster (2 logic + 2 connect) in $dir"
echo "  clients (TCP):  127.0.0.1:$base, 127.0.0.1:$((base + 1))"
echo "  logic http:     127.0.0.1:$http, 127.0.0.1:$((http + 1))"
echo "  admin token:    $TERN_ADMIN_TOKEN"
echo "  pids:           ${pids[*]}"
echo "  stop with ctrl-c"
wait -n "${pids[@]}" || true
echo "a process exited; stopping the cluster" >&2
