#!/bin/bash
# callgrind-send.sh - instructions per copy of warmup-service's send path.
#
# The machine's speed varies by tens of percent from one minute to the next;
# instruction counts do not. This runs the normal send path (CUSTOM client,
# SMTP_TLS=none, WORKERS=W, SQLite state and Kafka events on) under
# valgrind --tool=callgrind for a broadcast to N users through a Postfix
# smtp-sink, then prints the instructions per copy of each thread's main
# function and the top functions (start-up included, so compare runs of
# the same N). Not a throughput figure: valgrind is ~50x slower.
#
#   N=3000  recipients    W=4  workers
# Also: BUILD_DIR, KEEP_TMP=1 (the callgrind file stays in the temp dir).
. "$(dirname "$0")/common.sh"
: "${N:=3000}" "${W:=4}"
need valgrind callgrind_annotate smtp-sink
need_bins broker warmup

machine_line
note "callgrind send: N=$N W=$W; temp dir $BTMP"
start_broker
send_json >"$BTMP/send.json"
seed_users "$N"

SP=$(freeport)
start_sink svc "$SP"
copy_db seed cg
CG_OUT=$BTMP/callgrind.out
cat >"$BTMP/vg-warmup" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$CG_OUT "$WARMUP_BIN"
EOF
chmod +x "$BTMP/vg-warmup"
WP=$(freeport)
# valgrind's start is slow: start_svc waits up to 30 s for /readyz
start_svc "$BTMP/vg-warmup" warmup.db /readyz warmup-service cg "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM \
  SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" SMTP_TLS=none WORKERS="$W" MESSAGE_ID_DOMAIN=sender.bench.test
pid_var=cg_PID
watch_send "http://127.0.0.1:$WP" "${!pid_var}" "$N" "$BTMP/cg.watch" --body "$BTMP/send.json" --timeout 900 ||
  die "broadcast under valgrind did not finish (log: $BTMP/cg/out.log)"
wait_for 300 metric_is "http://127.0.0.1:$WP" outbox_pending 0 || die "outbox did not drain within 300 s"
stop_named cg
[ -s "$CG_OUT" ] || die "no callgrind output in $CG_OUT"

echo "callgrind, warmup-service sending $N copies at W=$W (instructions per copy, start-up included)"
callgrind_annotate --inclusive=yes "$CG_OUT" 2>/dev/null | awk -v n="$N" '
  /PROGRAM TOTALS/ { gsub(",", "", $1); printf "  %-28s %10.0f\n", "total", $1 / n }
  /:(worker_main|writer_main|dispatcher_main|publisher_main|mime_compose|make_event|store_claim|store_apply_results) / {
    v = $1; gsub(",", "", v); f = $0; sub(/.*:/, "", f); sub(/ .*/, "", f)
    printf "  %-28s %10.0f\n", f, v / n }'
echo "top functions (self):"
callgrind_annotate "$CG_OUT" 2>/dev/null | awk -v n="$N" '
  /file:function/ { on = 1; next } on && /%\)/ && k++ < 15 {
    v = $1; gsub(",", "", v); f = $0
    sub(/.*%\) +/, "", f); sub(/ \[.*/, "", f); sub(/^.*\//, "", f); sub(/^[^:]*:/, "", f)
    printf "  %-36s %8.0f\n", f, v / n }'
