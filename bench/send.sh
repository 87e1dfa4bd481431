#!/bin/bash
# send.sh - send throughput of warmup-service against Postfix smtp-source.
#
# For each W in WS: a broadcast to N users (2 KB body) through the CUSTOM
# client (SMTP_TLS=none, WORKERS=W) to a Postfix smtp-sink on loopback, with
# durable state (SQLite) and Kafka events on (kafka-dev-broker), timed from
# POST /send to GET /emails/{id} progress sent=N; and, in the same run,
# `smtp-source -d -s W -m N -l 2048` against a fresh smtp-sink started the
# same way. Prints msgs/s for both and the ratio (ours / smtp-source).
# BENCH_DB=postgres: the service's state in PostgreSQL (common.sh).
# The users are imported once (POST /users/import) into a database that is
# copied for every W, so each W starts from the same state.
#
#   N=10000      recipients (full run: N=100000)
#   WS="1 4 8"   concurrencies (WORKERS and smtp-source -s)
#   SEND_BATCH=  the service's SEND_BATCH (default: the service's own, 32)
#   TIMEOUT=600  seconds allowed for one broadcast
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
: "${N:=10000}" "${WS:=1 4 8}" "${SEND_BATCH:=}" "${TIMEOUT:=600}"
need smtp-sink smtp-source
[ -x /usr/bin/time ] || die "/usr/bin/time missing: apt-get install time"
need_bins broker warmup

machine_line
note "send: N=$N WS='$WS' SEND_BATCH=${SEND_BATCH:-default}; temp dir $BTMP"
start_broker
send_json >"$BTMP/send.json"

seed_users "$N"
note "imported $N users in $(fmt_s "$IMPORT_MS") s ($(fmt_rate "$N" "$IMPORT_MS") users/s); user events published after $(fmt_s "$DRAIN_MS") s"

ROWS=()
for W in $WS; do
  # --- reference: smtp-source, same concurrency, same kind of sink
  SP=$(freeport)
  start_sink "ref$W" "$SP"
  s0=$(cpu_ms "$SINK_PID")
  t0=$(now_ms)
  timeout "$TIMEOUT" /usr/bin/time -f '%U %S' -o "$BTMP/ref$W.time" smtp-source -d -s "$W" -m "$N" -l 2048 -f noreply@sender.bench.test \
    -t rcpt@d0.bench.test -S "Hello" "127.0.0.1:$SP" >"$BTMP/ref$W.out" 2>&1 ||
    die "smtp-source -s $W failed: $(tail -3 "$BTMP/ref$W.out")"
  ref_ms=$(($(now_ms) - t0))
  ref_got=$(sink_settle "ref$W" "$N")
  ref_sink_ms=$(($(cpu_ms "$SINK_PID") - s0))
  ref_cpu_ms=$(awk '{ printf "%d", ($1 + $2) * 1000 }' "$BTMP/ref$W.time")
  stop_pid "$SINK_PID"
  [ "$ref_got" = "$N" ] || die "smtp-sink counted $ref_got messages from smtp-source, want $N"

  # --- warmup-service, CUSTOM client, WORKERS=W
  SP=$(freeport)
  start_sink "svc$W" "$SP"
  copy_db seed "w$W"
  WP=$(freeport)
  W_URL=http://127.0.0.1:$WP
  start_warmup "w$W" "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" \
    SMTP_TLS=none WORKERS="$W" MESSAGE_ID_DOMAIN=sender.bench.test ${SEND_BATCH:+SEND_BATCH=$SEND_BATCH}
  pid_var=w${W}_PID
  pid=${!pid_var}
  c0=$(cpu_ms "$pid")
  s0=$(cpu_ms "$SINK_PID")
  perf_start "$pid" "warmup-W$W"
  watch_send "$W_URL" "$pid" "$N" "$BTMP/w$W.watch" --body "$BTMP/send.json" --timeout "$TIMEOUT" ||
    die "broadcast with WORKERS=$W did not finish (log: $BTMP/w$W/out.log)"
  perf_stop "$N" copy
  c1=$(cpu_ms "$pid")
  s1=$(cpu_ms "$SINK_PID")
  svc_ms=$(kv "$BTMP/w$W.watch" done_ms)
  svc_ms=${svc_ms%.*}
  t_done=$(now_ms)
  wait_for 300 metric_is "$W_URL" outbox_pending 0 || die "outbox did not drain within 300 s"
  ev_ms=$(($(now_ms) - t_done + svc_ms))
  svc_got=$(sink_settle "svc$W" "$N")
  [ "$svc_got" = "$N" ] || die "smtp-sink counted $svc_got messages from warmup-service, want $N"
  stop_named "w$W"
  stop_pid "$SINK_PID"
  drop_db "w$W"
  ROWS+=("$W $(fmt_rate "$N" "$ref_ms") $(fmt_rate "$N" "$svc_ms") $(fmt_ratio "$ref_ms" "$svc_ms") $(fmt_s "$svc_ms") $(fmt_s "$ev_ms") $(fmt_s "$((c1 - c0))") $(fmt_s "$((s1 - s0))") $(fmt_s "$ref_cpu_ms") $(fmt_s "$ref_sink_ms") $svc_got")
  ratio=$(fmt_ratio "$ref_ms" "$svc_ms")
  summary "send W=$W N=$N ($BENCH_DB)" "$(fmt_rate "$N" "$svc_ms") msg/s vs smtp-source $(fmt_rate "$N" "$ref_ms")" "ratio >= 1.00" "ratio $ratio $(verdict "$ratio >= 1")"
  note "W=$W: smtp-source $(fmt_rate "$N" "$ref_ms")/s, warmup-service $(fmt_rate "$N" "$svc_ms")/s"
done

echo "send throughput: N=$N messages, 2048-byte body, smtp-sink on 127.0.0.1, state in $BENCH_DB, target ratio >= 1.00"
printf '%-3s %14s %10s %6s %8s %9s %9s %10s %9s %10s %9s\n' W "smtp-source/s" "warmup/s" ratio "wall s" "events s" "svc CPU" "svc sink" "src CPU" "src sink" "sink got"
for r in "${ROWS[@]}"; do
  # shellcheck disable=SC2086
  printf '%-3s %14s %10s %6s %8s %9s %9s %10s %9s %10s %9s\n' $r
done
echo "(ratio = warmup msgs/s / smtp-source msgs/s; wall = POST /send to progress sent=N;"
echo " events = POST /send until every email.sent event is acknowledged by Kafka (outbox_pending 0);"
echo " CPU = user+system seconds during the run: svc CPU = warmup-service, svc sink = the smtp-sink it sent to,"
echo " src CPU = smtp-source, src sink = the smtp-sink smtp-source sent to)"
perf_print
