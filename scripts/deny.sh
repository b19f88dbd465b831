#!/usr/bin/env bash
# Audits the dependency tree against deny.toml with cargo-deny: licenses,
# bans and sources always; RustSec advisories when the advisory database
# can be fetched. Fails on any error-level finding; duplicate versions only
# warn.
#
#   scripts/deny.sh
#
# Environment:
#   DENY_FETCH_TIMEOUT   seconds allowed for reaching the advisory database
#                        (default 15)
#   DENY_ADVISORIES      auto (default): check advisories against GitHub's
#                        database when it is reachable, otherwise against
#                        the snapshot bundle, otherwise say so and skip them;
#                        require: fail instead of skipping; off: never check
#   DENY_ADVISORY_BUNDLE a git bundle of the advisory database, used when
#                        GitHub cannot be reached (default
#                        ../shared/advisory-db.bundle beside the checkout)
#
# The advisory database is a git repository on GitHub and no package
# registry mirrors it. Where only the registries are reachable, a snapshot
# of it (a git bundle) stands in; see the [advisories] comment in deny.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.20.2
fetch_timeout="${DENY_FETCH_TIMEOUT:-15}"
advisories="${DENY_ADVISORIES:-auto}"
db_url=https://github.com/RustSec/advisory-db
case "$advisories" in
    auto|require|off) ;;
    *)
        echo "scripts/deny.sh: DENY_ADVISORIES must be auto, require or off, not '$advisories'" >&2
        exit 2 ;;
esac

if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $version" ]; then
    echo "== installing cargo-deny $version"
    # A target directory of its own, so the build neither locks nor fills
    # the workspace's (CARGO_TARGET_DIR may point there).
    CARGO_TARGET_DIR="${TMPDIR:-/tmp}/deny-target" \
        cargo install cargo-deny --locked --version "$version"
fi

echo "== cargo deny: licenses bans sources"
# Duplicate versions only warn; their dependency trees would fill the log.
cargo deny --locked --workspace check --hide-inclusion-graph licenses bans sources

if [ "$advisories" = off ]; then
    echo "== cargo deny: advisories SKIPPED (DENY_ADVISORIES=off)"
    exit 0
fi

# cargo-deny's own clone has no timeout, and a firewall that drops packets
# would hang it; an unresolvable host fails in milliseconds either way.
if probe_err=$(GIT_TERMINAL_PROMPT=0 timeout "$fetch_timeout" \
    git ls-remote --heads "$db_url" main 2>&1 >/dev/null); then
    echo "== cargo deny: advisories"
    # Reachable a moment ago, so a clone that stalls now is a failure, not
    # a skip; the shallow clone takes seconds when the network is fine.
    timeout 300 cargo deny --locked --workspace check advisories
    exit 0
fi
rc=$?
reason=$(printf '%s\n' "$probe_err" | grep -m1 -E 'fatal|error' || true)
[ "$rc" -eq 124 ] && reason="no answer within ${fetch_timeout} s"
why="the RustSec database ($db_url) is unreachable from here (${reason:-git exit $rc})"

bundle="${DENY_ADVISORY_BUNDLE:-../shared/advisory-db.bundle}"
if [ -f "$bundle" ]; then
    # Where cargo-deny 0.20 keeps the default database: advisory-db-<hash of
    # its URL>. It takes the database's age from the later of the HEAD
    # commit's date and .git/HEAD's mtime, and refuses one older than
    # maximum-db-staleness in deny.toml: date the fresh clone's HEAD file
    # back to the snapshot, so the snapshot's own age is what counts.
    db="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
    rm -rf "$db"
    mkdir -p "$(dirname "$db")"
    git clone --quiet "$bundle" "$db" 2>/dev/null
    taken=$(git -C "$db" show -s --format=%cI HEAD)
    touch -d "$taken" "$db/.git/HEAD"
    age_days=$(( ($(date +%s) - $(date -d "$taken" +%s)) / 86400 ))
    echo "== cargo deny: advisories, offline, against the snapshot in $bundle (taken $taken, $age_days days ago): $why"
    cargo deny --locked --workspace --offline check advisories
    exit 0
fi

if [ "$advisories" = require ]; then
    echo "== cargo deny: advisories FAILED: $why, no snapshot at $bundle, and DENY_ADVISORIES=require" >&2
    exit 1
fi
echo "== cargo deny: advisories SKIPPED: $why and no snapshot at $bundle; licenses, bans and sources passed"
