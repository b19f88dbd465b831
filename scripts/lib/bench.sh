# Helpers shared by the scripts/bench-*.sh scripts; sourced, never run.

# The median of the numbers on stdin, one per line (of an even count, the
# lower middle one).
median() { sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}'; }

# The median, rounded for a table: whole from 100 up, else 3 digits.
median_rounded() { median | awk '{if ($1 >= 100) printf "%.0f", $1; else printf "%.3g", $1}'; }

# Parses, for the scripts that compare two binaries,
#   [--runs N] [--port P] BINARY_A BINARY_B [BENCH DIRECT ARGS...]
# into runs, port, bin_a, bin_b and bench_args. What is not given keeps the
# value the caller set first; --help and a usage error print lines
# 2..usage_end of the calling script.
two_binaries() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --runs) runs="$2"; shift 2 ;;
            --port) port="$2"; shift 2 ;;
            -h|--help) sed -n "2,${usage_end}p" "$0"; exit 0 ;;
            -*) echo "unknown argument $1" >&2; exit 2 ;;
            *) break ;;
        esac
    done
    [ $# -ge 2 ] || { sed -n "2,${usage_end}p" "$0" >&2; exit 2; }
    bin_a="$(realpath "$1")" bin_b="$(realpath "$2")"
    shift 2
    [ $# -eq 0 ] || bench_args=("$@")
    command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }
}
