#!/bin/bash
# scale.sh - one broadcast to N users: wall time and memory of warmup-service.
#
# N users are imported (POST /users/import) and their user.registered events
# published; the service is then restarted on the same database (so its VmHWM
# covers the broadcast only) and one email (2 KB body) is broadcast through
# the CUSTOM client (WORKERS) to Postfix smtp-sink on loopback, with durable
# state and Kafka events on. Measured: wall time from POST /send to progress
# sent=N, msgs/s, VmRSS of warmup-service sampled every 100 ms during the run
# (its maximum, its value once N/10 copies were sent, at the end) and VmHWM.
# Targets (issue 6, N=1,000,000): <= 120 s, peak RSS <= 64 MB, RSS flat
# between N/10 and N.
#
#   N=100000     recipients (full run: N=1000000)
#   WORKERS=8    SMTP connections
#   SEND_BATCH=  the service's SEND_BATCH (default: the service's own)
#   TIMEOUT=1800 seconds allowed for the broadcast
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
: "${N:=100000}" "${WORKERS:=8}" "${SEND_BATCH:=}" "${TIMEOUT:=1800}"
need smtp-sink
need_bins broker warmup

machine_line
note "scale: N=$N WORKERS=$WORKERS; temp dir $BTMP"
start_broker
send_json >"$BTMP/send.json"
SP=$(freeport)
start_sink sink "$SP"
WP=$(freeport)
W_URL=http://127.0.0.1:$WP
SVC=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" SMTP_TLS=none
  WORKERS="$WORKERS" MESSAGE_ID_DOMAIN=sender.bench.test ${SEND_BATCH:+SEND_BATCH=$SEND_BATCH})
start_warmup warmup "$WP" "${SVC[@]}"
import_users "$W_URL" "$N"
note "imported $N users in $(fmt_s "$IMPORT_MS") s ($(fmt_rate "$N" "$IMPORT_MS") users/s); user events published after $(fmt_s "$DRAIN_MS") s"
import_hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$warmup_PID/status")
stop_named warmup
start_warmup warmup "$WP" "${SVC[@]}"
idle_rss=$(awk '/VmRSS/ { print $2 }' "/proc/$warmup_PID/status")

c0=$(cpu_ms "$warmup_PID")
perf_start "$warmup_PID" "warmup-scale"
watch_send "$W_URL" "$warmup_PID" "$N" "$BTMP/scale.watch" --body "$BTMP/send.json" --timeout "$TIMEOUT" ||
  die "the broadcast did not finish (log: $BTMP/warmup/out.log)"
perf_stop "$N" copy
c1=$(cpu_ms "$warmup_PID")
ms=$(kv "$BTMP/scale.watch" done_ms)
ms=${ms%.*}
t_done=$(now_ms)
wait_for 600 metric_is "$W_URL" outbox_pending 0 || die "outbox did not drain within 600 s"
ev_ms=$(($(now_ms) - t_done + ms))
got=$(sink_settle sink "$N")
[ "$got" = "$N" ] || die "smtp-sink counted $got messages, want $N"
db_mb=$(du -cm "$BTMP/warmup"/warmup.db* | tail -1 | cut -f1)
stop_named warmup

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
W=$BTMP/scale.watch
tgt_s=$(awk -v n="$N" 'BEGIN { printf "%.1f", 120 * n / 1000000 }')
summary "scale N=$N W=$WORKERS" "$(fmt_s "$ms") s, $(fmt_rate "$N" "$ms") msg/s" "<= $tgt_s s (120 s per 1M)" "$(verdict "$(fmt_s "$ms") <= $tgt_s")"
peak=$(mb "$(kv "$W" rss_max_kb)")
summary "scale N=$N memory" "peak RSS $peak MB (at N/10 $(mb "$(kv "$W" rss_at_tenth_kb)"), end $(mb "$(kv "$W" rss_end_kb)"))" "<= 64 MB, flat" "$(verdict "$peak <= 64")"
echo "scale: one broadcast to N=$N users, WORKERS=$WORKERS, smtp-sink on 127.0.0.1"
printf '%-34s %14s %14s\n' "" measured target
printf '%-34s %14s %14s\n' "wall s (POST /send -> sent=N)" "$(fmt_s "$ms")" "$(awk -v n="$N" 'BEGIN { printf "%.1f", 120 * n / 1000000 }')"
printf '%-34s %14s %14s\n' "msgs/s" "$(fmt_rate "$N" "$ms")" 8333
printf '%-34s %14s %14s\n' "events acknowledged by Kafka, s" "$(fmt_s "$ev_ms")" ""
printf '%-34s %14s %14s\n' "peak VmRSS sampled, MB" "$(mb "$(kv "$W" rss_max_kb)")" 64
printf '%-34s %14s %14s\n' "VmHWM after the broadcast, MB" "$(mb "$(kv "$W" hwm_kb)")" 64
printf '%-34s %14s %14s\n' "VmRSS idle before /send, MB" "$(mb "$idle_rss")" ""
printf '%-34s %14s %14s\n' "VmRSS at sent=N/10, MB" "$(mb "$(kv "$W" rss_at_tenth_kb)")" ""
printf '%-34s %14s %14s\n' "VmRSS at sent=N, MB" "$(mb "$(kv "$W" rss_end_kb)")" "flat"
printf '%-34s %14s %14s\n' "warmup CPU s during the broadcast" "$(fmt_s "$((c1 - c0))")" ""
printf '%-34s %14s %14s\n' "import: users/s" "$(fmt_rate "$N" "$IMPORT_MS")" ""
printf '%-34s %14s %14s\n' "import: VmHWM, MB" "$(mb "$import_hwm")" ""
printf '%-34s %14s %14s\n' "database size after, MB" "$db_mb" ""
printf '%-34s %14s %14s\n' "sink received" "$got" "$N"
echo "(target wall time scaled linearly from 120 s per 1,000,000; RSS sampled every 100 ms from /proc/PID/status)"
perf_print
