#!/bin/sh
# Regenerate the sample result shown in the README: one full sweep into results/samples/sweep.json, then the
# Markdown/LaTeX tables and PNG plots generated from it (exactly what a user gets from the same commands).
#
#   benchmarks/make_samples.sh                 # full sweep: every transport, both patterns, 3 trials (~10 min)
#   TRIALS=1 SIZES=64,4K TRANSPORTS=pipe,tcp OUT=/tmp/samples benchmarks/make_samples.sh   # a quick check
#   PLOTS_ONLY=1 benchmarks/make_samples.sh    # redraw the plots of the existing sweep.json (no new run)
#
# Run it on an otherwise idle machine: other load shows up as spread across trials (the report warns).
set -eu

cd "$(dirname "$0")/.."
OUT=${OUT:-results/samples}
TRANSPORTS=${TRANSPORTS:-all}
PATTERNS=${PATTERNS:-pingpong,stream}
SIZES=${SIZES:-0,64,4K,64K,1M}
TRIALS=${TRIALS:-3}
PYTHON=${PYTHON:-python3}
HIST_TRANSPORTS=${HIST_TRANSPORTS:-pipe,unix,tcp,udp,shm,shm-spin}
HIST_SIZE=${HIST_SIZE:-64}

ipclab() {
    PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m ipclab "$@"
}

# The same warnings are in every report of one result: show them once, and stderr again only on failure.
quiet() {
    err=$(ipclab "$@" 2>&1 >/dev/null) || { echo "$err" >&2; return 1; }
}

R="$OUT/sweep.json"
if [ -z "${PLOTS_ONLY:-}" ]; then
    mkdir -p "$OUT"
    ipclab sysinfo > "$OUT/sysinfo.txt"

    # Exit status 1 means some cells failed (their reasons are in the result and the tables): keep going.
    # Anything else (2: bad input, 130/143: interrupted) stops the script.
    status=0
    ipclab run --transport "$TRANSPORTS" --pattern "$PATTERNS" --size "$SIZES" --trials "$TRIALS" --quiet --force \
        --output "$OUT/sweep.json" > "$OUT/run-output.txt" 2> "$OUT/run-warnings.txt" || status=$?
    if [ "$status" -gt 1 ]; then
        cat "$OUT/run-warnings.txt" >&2
        exit "$status"
    fi
    [ "$status" -eq 0 ] || echo "make_samples: some cells failed; see $OUT/run-warnings.txt" >&2

    # Tables: everything in one Markdown file (its warnings shown once, here), plus one file per question for
    # the README. The other reports carry the same warnings inside; quiet drops their stderr copy.
    ipclab report "$R" --format markdown --output "$OUT/report.md" --force
    quiet report "$R" --format markdown --metric rtt_p50_us,rtt_p99_us --output "$OUT/latency.md" --force
    quiet report "$R" --format markdown --metric mb_s,msg_s --output "$OUT/throughput.md" --force
    quiet report "$R" --format markdown --metric cpu_us_msg,ctx_msg --output "$OUT/cpu.md" --force
    quiet report "$R" --format latex --output "$OUT/report.tex" --force
    quiet report "$R" --format csv --output "$OUT/report.csv" --force
fi

# Plots: whatever kinds the sweep has data for (a stream-only sweep has no round trips to plot).
for kind in latency throughput cdf cpu; do
    ipclab plot "$R" --kind "$kind" --output "$OUT/$kind.png" --force \
        || echo "make_samples: no $kind plot for this sweep" >&2
done
# A histogram shows a few chosen cells (at most 8): the transports people compare, at one size.
ipclab plot "$R" --kind hist --transport "$HIST_TRANSPORTS" --size "$HIST_SIZE" --output "$OUT/hist.png" --force \
    || echo "make_samples: no hist plot for this sweep (set HIST_TRANSPORTS and HIST_SIZE to cells it has)" >&2

echo "samples written to $OUT:"
ls -l "$OUT"
