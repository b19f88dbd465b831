#!/usr/bin/env bash
# The soak (tests/soak/): phone-paced traffic in both shapes while clients
# drop and server processes are stopped and started again, then the
# exactly-once, in-order check on every user's list and every device's
# stream. Both shapes run at once; each prints a summary (messages,
# disconnects, failures caused, peak RSS per process role).
#
#   scripts/soak.sh [--secs N | --minutes N] [--shape cluster|standalone] [--release]
#
# scripts/test.sh runs it for 600 s; a longer run only needs a larger N.
# It starts MariaDB, Redis and NATS itself (their Debian packages must be
# installed; scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=600
filter=soak_
profile=()
while [ $# -gt 0 ]; do
    case "$1" in
        --secs) secs=$2; shift 2 ;;
        --minutes) secs=$(($2 * 60)); shift 2 ;;
        --shape) filter="soak_$2"; shift 2 ;;
        --release) profile=(--release); shift ;;
        *) echo "usage: scripts/soak.sh [--secs N | --minutes N] [--shape cluster|standalone] [--release]" >&2; exit 2 ;;
    esac
done
TERN_SOAK_SECS=$secs exec cargo test "${profile[@]}" --locked --test soak -- "$filter" --nocapture
