#!/usr/bin/env bash
# Fuzzes the admin API with schemathesis against its own OpenAPI document.
#
# Starts `tern serve` in a fresh temporary data directory on free loopback
# ports, waits for /healthz, then runs schemathesis (pinned in
# scripts/schemathesis-requirements.txt, installed into
# target/schemathesis-venv) against /api/v1/openapi.json with the admin
# token. Fails when any response is a 5xx, has a status code the document
# does not list for its operation, or does not match the document's schema,
# content type or headers; also when a method a path lacks is not answered
# 405 with Allow, or a request without the token is not refused. 4xx
# answers to fuzzed input are fine as long as they are documented.
#
# Environment:
#   TERN_BIN                    server binary (default target/debug/tern, or
#                               $CARGO_TARGET_DIR/debug/tern; built with
#                               `cargo build --bin tern` when missing)
#   SCHEMATHESIS_MAX_EXAMPLES   test cases per operation and phase (default 50)
#   SCHEMATHESIS_SEED           random seed (default fixed, so runs repeat;
#                               set to "random" for a new one each run)
#   SCHEMATHESIS_CHECKS         comma-separated checks (default below)
#   SCHEMATHESIS_TIMEOUT        seconds for the whole schemathesis run (600)
# Extra arguments are passed to `st run` as they are, e.g.
#   scripts/schemathesis.sh --include-path-regex '^/api/v1/rooms'
#
# Reports (JUnit XML, the server's log) go to target/schemathesis-report/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

requirements="$root/scripts/schemathesis-requirements.txt"
venv="$root/target/schemathesis-venv"
report_dir="$root/target/schemathesis-report"
tern_bin="${TERN_BIN:-${CARGO_TARGET_DIR:-target}/debug/tern}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
seed="${SCHEMATHESIS_SEED:-20240601}"
# 5xx, undocumented status codes, bodies/content types/headers that differ
# from the document; plus: methods a path lacks answer 405 with Allow, and
# the admin token is really required (a request without it must not pass).
checks="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method,ignored_auth}"
run_timeout="${SCHEMATHESIS_TIMEOUT:-600}"

say() { echo "== schemathesis: $*"; }

# --- schemathesis, in a venv under target/ ---------------------------------
pinned=$(sed -n 's/^schemathesis==\([^[:space:]#]*\).*/\1/p' "$requirements")
if [ -z "$pinned" ]; then
    echo "scripts/schemathesis.sh: no schemathesis==VERSION in $requirements" >&2
    exit 1
fi
installed=""
if [ -x "$venv/bin/python" ]; then
    installed=$("$venv/bin/python" -c \
        'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
fi
if [ "$installed" != "$pinned" ]; then
    say "installing schemathesis $pinned into ${venv#"$root"/}"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian's python3 keeps venv (ensurepip) in a package of its own.
        rm -rf "$venv"
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
fi
st="$venv/bin/st"
say "$("$st" --version)"

# --- the server --------------------------------------------------------------
if [ ! -x "$tern_bin" ]; then
    say "$tern_bin missing: cargo build"
    cargo build --bin tern
fi
[ -x "$tern_bin" ] || { echo "scripts/schemathesis.sh: no server binary at $tern_bin" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tern-schemathesis.XXXXXX")
server_pid=""
cleanup() {
    local rc=$?
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ -f "$tmp/server.log" ]; then
        mkdir -p "$report_dir"
        cp "$tmp/server.log" "$report_dir/server.log"
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Two free loopback ports (the client listener and HTTP), chosen by the OS.
read -r client_port http_port < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)
token=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
base="http://127.0.0.1:$http_port"

say "starting $tern_bin serve (http $base, data $tmp/data)"
# The token goes through the environment, not the command line (ps); a
# TERN_DATABASE_URL of the caller must not point the server elsewhere.
env -u TERN_DATABASE_URL TERN_ADMIN_TOKEN="$token" "$tern_bin" serve \
    --data-dir "$tmp/data" \
    --drain-grace-secs 1 \
    --listen "127.0.0.1:$client_port" \
    --http "127.0.0.1:$http_port" \
    --log "${TERN_LOG:-warn}" \
    >"$tmp/server.log" 2>&1 &
server_pid=$!

# Bounded wait for /healthz (30 s).
python3 - "$base/healthz" "$server_pid" <<'EOF' || { echo "--- server log"; tail -n 50 "$tmp/server.log"; exit 1; }
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("scripts/schemathesis.sh: tern serve exited before it was healthy")
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("scripts/schemathesis.sh: /healthz did not answer within 30 s")
EOF
say "server healthy"

# --- the run -----------------------------------------------------------------
seed_args=(--seed "$seed")
[ "$seed" = random ] && seed_args=()
mkdir -p "$report_dir"
say "checks: $checks; up to $max_examples examples per operation and phase"
rc=0
# Run from the temp dir so nothing is left behind in the work tree.
(
    cd "$tmp"
    exec timeout --kill-after=10 "$run_timeout" "$st" run "$base/api/v1/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks "$checks" \
        --max-examples "$max_examples" \
        "${seed_args[@]}" \
        --workers 2 \
        --request-timeout 15 \
        --generation-database none \
        --report junit \
        --report-junit-path "$report_dir/junit.xml" \
        --no-color \
        "$@"
) || rc=$?

if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "scripts/schemathesis.sh: schemathesis did not finish within ${run_timeout}s" >&2
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "scripts/schemathesis.sh: tern serve died during the run" >&2
    [ "$rc" -ne 0 ] || rc=1
fi
if [ "$rc" -ne 0 ]; then
    echo "--- last lines of the server log (all of it in ${report_dir#"$root"/}/server.log)"
    tail -n 30 "$tmp/server.log" || true
    say "FAILED (exit $rc)"
else
    say "passed"
fi
exit "$rc"
