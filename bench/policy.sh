#!/bin/bash
# policy.sh - how long placement takes to steer the sender (DESIGN 9.3): from
# a copy's email.sent to warmup-service pausing its identity for the
# provider, through health-service's check round, placement.summary on
# feedback-events and WARMUP_POLICY.
#
# One dev broker, smtp-sink, health-service with the deterministic mock loop
# for spam.test (spam rate SPAM, so every round that checks the copies is
# spam-heavy) and warmup-service. Per trial a new identity sends N copies
# to spam.test; the times come from the services' own log lines (one
# clock): sent = the last copy's outcome committed (warmup), summary =
# health's "placement.summary identity=..." line, decision = warmup's
# "identity=... provider=spam.test paused" line.
#   sent -> summary:     waits for the next round (0..CHECK_INTERVAL) + the round
#   summary -> decision: Kafka delivery + the consumer's batch + the policy
# Goal: sent -> decision within one CHECK_INTERVAL plus Kafka delivery.
#
#   CHECK_INTERVAL=5  TRIALS=5  N=40  SPAM=0.5
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh; forced to info here).
. "$(dirname "$0")/common.sh"
: "${CHECK_INTERVAL:=5}" "${TRIALS:=5}" "${N:=40}" "${SPAM:=0.5}"
need_bins broker warmup health
need smtp-sink
BENCH_LOG_LEVEL=info
machine_line
note "policy: CHECK_INTERVAL=${CHECK_INTERVAL}s TRIALS=$TRIALS N=$N SPAM=$SPAM; temp dir $BTMP"
start_broker
SP=$(freeport)
start_sink sink "$SP"
echo "{\"spam.test\":{\"loop\":\"mock\",\"delivered\":$(awk -v s=$SPAM "BEGIN{print 1-s}"),\"spam\":$SPAM,\"opened\":0,\"read\":0}}" >"$BTMP/loops.json"
HP=$(freeport) WP=$(freeport)
W=http://127.0.0.1:$WP
start_health health "$HP" CHECK_INTERVAL="$CHECK_INTERVAL" FEEDBACK_LOOPS_FILE="$BTMP/loops.json"
start_warmup warmup "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" SMTP_TLS=none \
  MESSAGE_ID_DOMAIN=w.bench.test WARMUP_POLICY='{"min_checked":10}'
$PY -c "
print('name,email_id')
for i in range($N): print(f'U{i},u{i}@spam.test')" >"$BTMP/users.csv"
curl -sf -o /dev/null -H 'Content-Type: text/csv' --data-binary @"$BTMP/users.csv" "$W/users/import" ||
  die "import failed"

# log_ms FILE PATTERN - the time (ms since the epoch) of the first log line matching
log_ms() { grep -m1 -E "$2" "$1" | $PY -c '
import sys, datetime
l = sys.stdin.readline()
print(int(datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000) if l else "")'; }

ROWS=()
# trial 0 warms up (the services' consumer groups join; not counted)
for t in $(seq 0 "$TRIALS"); do
  who=news$t@acme.bench.test
  curl -sf -o /dev/null -H 'Content-Type: application/json' "$W/identities" -d "{\"address\":\"$who\"}" ||
    die "POST /identities failed"
  eid=$(curl -sf -H 'Content-Type: application/json' "$W/send" \
    -d "{\"from\":\"$who\",\"subject\":\"t$t\",\"body\":\"b\"}" | $PY -c 'import json,sys; print(json.load(sys.stdin)["email_id"])')
  wait_for 60 bash -c "curl -s $W/emails/$eid | grep -q '\"sent\": *$N'" || die "trial $t: the copies were not sent"
  sent_ms=$(now_ms)
  wait_for $((CHECK_INTERVAL * 3 + 30)) grep -q "identity=$who provider=spam.test paused" "$BTMP/warmup/out.log" ||
    die "trial $t: no pause decision (logs in $BTMP)"
  sum_ms=$(log_ms "$BTMP/health/out.log" "placement.summary identity=$who provider=spam.test .*checked=[1-9]")
  dec_ms=$(log_ms "$BTMP/warmup/out.log" "identity=$who provider=spam.test paused")
  [ "$t" -gt 0 ] && ROWS+=("$t $((sum_ms - sent_ms)) $((dec_ms - sum_ms)) $((dec_ms - sent_ms))")
  note "trial $t: sent->summary $((sum_ms - sent_ms)) ms, summary->decision $((dec_ms - sum_ms)) ms"
  sleep $((t % 3)) # start the next trial at another point of the round
done
echo "policy decision latency: copies sent -> identity paused for the provider (CHECK_INTERVAL=${CHECK_INTERVAL} s, mock loop spam $SPAM, $N copies)"
printf '%-6s %18s %22s %20s\n' trial "sent->summary ms" "summary->decision ms" "sent->decision ms"
for r in "${ROWS[@]}"; do
  # shellcheck disable=SC2086
  printf '%-6s %18s %22s %20s\n' $r
done
med=$(printf '%s\n' "${ROWS[@]}" | $PY -c 'import sys, statistics; print(int(statistics.median(int(l.split()[3]) for l in sys.stdin if l.strip())))')
summary "policy sent->pause CHECK_INTERVAL=$CHECK_INTERVAL" "median $med ms" "<= $((CHECK_INTERVAL * 1000)) ms + Kafka" "$(verdict "$med <= $((CHECK_INTERVAL * 1000)) + 1000")"
printf '%s\n' "${ROWS[@]}" | $PY -c '
import sys, statistics
rows = [list(map(int, l.split())) for l in sys.stdin if l.strip()]
a = sorted(r[3] for r in rows); b = sorted(r[2] for r in rows)
print("sent->decision min/median/max: %d / %d / %d ms; summary->decision (Kafka + policy) median %d ms;"
      " goal: <= CHECK_INTERVAL (%d ms) + Kafka" % (a[0], statistics.median(a), a[-1], statistics.median(b), int(sys.argv[1]) * 1000))' "$CHECK_INTERVAL"
