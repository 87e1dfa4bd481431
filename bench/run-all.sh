#!/bin/bash
# run-all.sh - every benchmark in turn, then one summary table.
#
#   N=...        passed to send.sh, scale.sh and ingest.sh (each has its own small
#                default when N is unset: 10000, 100000, 200000)
#   SEND_N= SCALE_N= INGEST_N=   override N for one of them; full sizes:
#                N=1000000 SEND_N=100000 D=60 (send W=1 runs at ~500 msg/s today,
#                so N=1000000 for send alone would take over 30 minutes)
#   D=...        passed to api.sh and ratelimit.sh (defaults 10 and 20 s)
#   ANALYTICS_N= copies for analytics.sh (default: N, else 200000; its own default is 1000000)
#   ONLY="send send@postgres cluster send_latency history history@postgres import scale
#         ingest api ratelimit policy seeds messages upload analytics"
#                the benchmarks to run, in order; NAME@postgres runs NAME.sh with
#                BENCH_DB=postgres (its state on a throwaway PostgreSQL cluster), so
#                send and send@postgres print the two engines side by side
#                (send_latency and history at N users / copies, 20,000 and 100,000
#                when N is unset; the issue's figures: N=10000000)
#   SIZE_MB=100  upload.sh's list (full size: SIZE_MB=1024)
# Every other knob of the scripts (WS, WORKERS, INGEST_MODE, TPMS, ...) passes
# through the environment. Each script's full output is printed as it runs and
# kept in $OUT_DIR (default: a temporary directory, printed at the end).
# Exit status: non-zero when a benchmark could not run to the end (a figure
# that misses its target is not a failure).
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
: "${ONLY:=send send@postgres cluster send_latency history history@postgres import scale ingest api ratelimit policy seeds messages upload analytics}"
: "${SIZE_MB:=100}" # upload.sh: the list size (the issue's figure: SIZE_MB=1024)
export SIZE_MB
: "${OUT_DIR:=$(mktemp -d /tmp/bench-results.XXXXXX)}"
mkdir -p "$OUT_DIR"
export BENCH_SUMMARY=$OUT_DIR/summary.tsv
: >"$BENCH_SUMMARY"
broken=""
t0=$(date +%s)
for run in $ONLY; do
  b=${run%@*} db=sqlite
  [ "$run" != "$b" ] && db=${run#*@}
  [ -x "$BENCH_DIR/$b.sh" ] || { echo "run-all: no benchmark '$b'" >&2; broken="$broken $b"; continue; }
  echo "=== $run ($(date -u +%H:%M:%S) UTC)"
  s=$(date +%s)
  case $b in
    send) n=${SEND_N:-${N:-}} ;;
    scale) n=${SCALE_N:-${N:-}} ;;
    ingest) n=${INGEST_N:-${N:-}} ;;
    seeds) n=${SEEDS_N:-} ;; # its own default: 100,000 copies over 1,000 mailboxes
    analytics) n=${ANALYTICS_N:-${N:-200000}} ;;
    send_latency) n=${N:-20000} ;; # its own default: 1,000,000 users
    history) n=${N:-100000} ;;     # its own default: 1,000,000 copies
    import) n=${N:-20000} ;;       # both engines in one run; its own default: 100,000 users
    *) n=${N:-} ;;
  esac
  if [ -n "$n" ]; then
    BENCH_DB=$db N=$n "$BENCH_DIR/$b.sh" 2>&1 | tee "$OUT_DIR/$run.out"
  else
    (unset N; BENCH_DB=$db "$BENCH_DIR/$b.sh") 2>&1 | tee "$OUT_DIR/$run.out"
  fi
  rc=${PIPESTATUS[0]}
  echo "=== $run: exit $rc, $(($(date +%s) - s)) s"
  [ "$rc" = 0 ] || broken="$broken $run"
done

echo
echo "=== summary ($(($(date +%s) - t0)) s in all; N=${N:-defaults}, D=${D:-defaults})"
grep -m1 '^machine:' "$OUT_DIR"/*.out 2>/dev/null | head -1 | cut -d: -f2-
awk -F'\t' '
  { r[NR] = $0; for (i = 1; i <= 4; i++) if (length($i) > w[i]) w[i] = length($i) }
  END {
    fmt = "%-" w[1] "s  %-" w[2] "s  %-" w[3] "s  %s\n"
    printf fmt, "benchmark", "measured", "target", "verdict"
    for (n = 1; n <= NR; n++) { split(r[n], f, "\t"); printf fmt, f[1], f[2], f[3], f[4] }
  }' "$BENCH_SUMMARY"
[ -z "$broken" ] || echo "broken runs (no figures):$broken"
echo "full outputs in $OUT_DIR"
[ -z "$broken" ]
