#!/bin/bash
# cluster.sh - one broadcast sent by 1 and by 3 warmup-service instances
# sharing one PostgreSQL database (DESIGN 9.6), side by side, with
# smtp-source's rate on the same machine as the reference.
#
# The users are imported once into a database that is copied for each run
# (CREATE DATABASE ... TEMPLATE). For K in KS: K instances (CUSTOM client,
# WORKERS=W each) on that copy send one broadcast of N copies to one
# Postfix smtp-sink, timed from POST /send (through the first instance) to
# progress sent=N. On this 2-core machine the three instances compete for
# the same cores as PostgreSQL and the sink: the figure shows what the
# coordination costs (claims with SKIP LOCKED, shared counters, leases),
# not a speed-up.
#
#   N=20000     recipients
#   KS="1 3"    instance counts
#   W=8         WORKERS per instance
#   TIMEOUT=600 seconds allowed for one broadcast
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
: "${N:=20000}" "${KS:=1 3}" "${W:=8}" "${TIMEOUT:=600}"
BENCH_DB=postgres
need smtp-sink smtp-source
need_bins broker warmup

machine_line
note "cluster: N=$N KS='$KS' W=$W; temp dir $BTMP"
start_broker
send_json >"$BTMP/send.json"
seed_users "$N"
note "imported $N users in $(fmt_s "$IMPORT_MS") s"

SP=$(freeport)
start_sink ref "$SP"
t0=$(now_ms)
timeout "$TIMEOUT" smtp-source -d -s "$W" -m "$N" -l 2048 -f noreply@sender.bench.test \
  -t rcpt@d0.bench.test -S "Hello" "127.0.0.1:$SP" >"$BTMP/ref.out" 2>&1 || die "smtp-source failed"
ref_ms=$(($(now_ms) - t0))
sink_settle ref "$N" >/dev/null
stop_pid "$SINK_PID"

ROWS=()
base_ms=
for K in $KS; do
  SP=$(freeport)
  start_sink "svc$K" "$SP"
  copy_db seed "c$K"
  pids=()
  for ((i = 1; i <= K; i++)); do
    port=$(freeport)
    [ "$i" = 1 ] && URL=http://127.0.0.1:$port
    WARMUP_DB=c$K start_warmup "c${K}_$i" "$port" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 \
      SMTP_PORT="$SP" SMTP_TLS=none WORKERS="$W" MESSAGE_ID_DOMAIN=sender.bench.test
    v=c${K}_${i}_PID
    pids+=("${!v}")
  done
  c0=0
  for p in "${pids[@]}"; do c0=$((c0 + $(cpu_ms "$p"))); done
  watch_send "$URL" "${pids[0]}" "$N" "$BTMP/c$K.watch" --body "$BTMP/send.json" --timeout "$TIMEOUT" ||
    die "broadcast with $K instances did not finish (logs: $BTMP/c${K}_*/out.log)"
  c1=0
  for p in "${pids[@]}"; do c1=$((c1 + $(cpu_ms "$p"))); done
  ms=$(kv "$BTMP/c$K.watch" done_ms)
  ms=${ms%.*}
  got=$(sink_settle "svc$K" "$N")
  for ((i = 1; i <= K; i++)); do stop_named "c${K}_$i"; done
  stop_pid "$SINK_PID"
  drop_db "c$K"
  [ -z "$base_ms" ] && base_ms=$ms
  ROWS+=("$K $(fmt_rate "$N" "$ms") $(fmt_s "$ms") $(fmt_s "$((c1 - c0))") $(fmt_ratio "$base_ms" "$ms") $(fmt_ratio "$ref_ms" "$ms") $got")
  summary "cluster K=$K N=$N (postgres)" "$(fmt_rate "$N" "$ms") msg/s" "report" "x$(fmt_ratio "$base_ms" "$ms") of K=1"
  note "K=$K: $(fmt_rate "$N" "$ms") msg/s"
done

echo "one broadcast of N=$N copies by K instances on one PostgreSQL database, WORKERS=$W each;"
echo "smtp-source -s $W on the same machine: $(fmt_rate "$N" "$ref_ms") msg/s"
printf '%-3s %10s %8s %9s %9s %13s %9s\n' K "msgs/s" "wall s" "CPU s" "vs K=1" "vs smtp-src" "sink got"
for r in "${ROWS[@]}"; do
  # shellcheck disable=SC2086
  printf '%-3s %10s %8s %9s %9s %13s %9s\n' $r
done
echo "(CPU = user+system seconds of all K instances during the broadcast; sink got = copies the sink"
echo " received, duplicates included)"
