#!/bin/bash
# test_feedback.sh - warmup-service consumes feedback-events (DESIGN 9.2):
# through a real warmup-service, the dev broker (with feedback-events) and
# Postfix smtp-sink, events produced with kcat: a hard bounce and a
# complaint suppress their address (reasons hard_bounce, complaint), a soft
# bounce does not, a malformed value, an unknown type and others are counted
# and skipped without blocking the partition, a duplicate changes nothing;
# the counters, the user.unsubscribed events, queued copies of a paused
# email dropped as suppressed, a later broadcast skipping the suppressed
# addresses, and restarts (SIGTERM, kill -9) that apply nothing twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"

TOKEN_API=api-token-for-feedback-test
AUTH=(-H "Authorization: Bearer $TOKEN_API")

mkdir -p "$TMP/broker"
"$BROKER_BIN" -n 1 -p 3 -f "$TMP/broker/bootstrap" -t email-events -t emailId-events \
  -t feedback-events </dev/null >/dev/null 2>"$TMP/broker/broker.log" &
BROKER_PID=$!; track $BROKER_PID
wait_for 10 test -s "$TMP/broker/bootstrap"; ok $? "kafka-dev-broker starts (with feedback-events)" || { finish; exit 1; }
BROKERS=$(head -1 "$TMP/broker/bootstrap")
SP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
start_smtp_sink "$SP" "$TMP/sink" --dump; ok $? "smtp-sink starts"
WARMUP=(KAFKA_BROKERS="$BROKERS" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP
  SMTP_TLS=none WORKERS=2 MESSAGE_ID_DOMAIN=sender.test API_TOKEN=$TOKEN_API)
start_warmup warmup "$WP" "${WARMUP[@]}"; ok $? "warmup-service starts" || { finish; exit 1; }

api() { http "$1" "$W$2" "${3-}" "${AUTH[@]}" "${@:4}"; }
progress() { jget "$(curl -s "${AUTH[@]}" "$W/emails/$1")" '"%d %d %d %d %d %s" % tuple([j["progress"][k] for k in ("sent","failed","pending","dead","suppressed")] + [j["progress"]["status"]])'; }
wait_done() { wait_for "${2:-60}" bash -c "curl -s -H 'Authorization: Bearer $TOKEN_API' $W/emails/$1 | $PY -c 'import json,sys; sys.exit(json.load(sys.stdin)[\"progress\"][\"status\"] != \"done\")'"; }
send() { jget "$(api POST /send "{\"from\":\"news@sender.test\",\"subject\":\"$1\",\"body\":\"Hello {{name}}\"${2:+,$2}}" | cut -d' ' -f2-)" 'j["email_id"]'; }
# delivered SUBJECT - the recipients smtp-sink received a copy of SUBJECT for, sorted
delivered() { dumped "$TMP/sink" | awk -F'\t' -v s="$1" '$2 == s {print $1}' | sort | tr '\n' ' '; }
# metric NAME{labels} - its value on /metrics (0 when absent)
metric() { curl -s "$W/metrics" | awk -v m="$1" '$1 == m {v = $2} END {print v + 0}'; }
fb() { metric "feedback_events_total{type=\"$1\"}"; }
fb_all() { echo $(($(fb hard_bounce) + $(fb soft_bounce) + $(fb complaint) + $(fb invalid))); }
# suppressions - "address:reason" of every entry, sorted
suppressions() { jget "$(api GET /suppressions | cut -d' ' -f2-)" '" ".join(sorted(x["email_id"] + ":" + x["reason"] for x in j))'; }
# unsubscribed - the user.unsubscribed events on emailId-events, "key:address:reason" sorted
unsubscribed() { kcat -C -b "$BROKERS" -t emailId-events -o beginning -e -q -f '%k\t%s\n' 2>/dev/null |
  $PY -c '
import json, sys
rows = []
for line in sys.stdin:
    k, v = line.rstrip("\n").split("\t", 1)
    e = json.loads(v)
    if e["type"] == "user.unsubscribed":
        rows.append("%s:%s:%s" % (k, e["email_id"], e["reason"]))
print(" ".join(sorted(rows)))'; }
# produce KEY<TAB>VALUE lines (stdin) onto feedback-events
produce() { kcat -P -b "$BROKERS" -t feedback-events -K $'\t' 2>>"$TMP/kcat.err"; }
AT=2026-05-01T10:00:00.000Z
bounced() { # RECIPIENT EMAIL_ID hard|soft STATUS
  printf '%s\t{"v":1,"type":"email.bounced","message_id":"<email-%s.0123456789abcdef@sender.test>","email_id":%s,"recipient":"%s","domain":"%s","bounce":"%s","status":"%s","diagnostic":"550 5.1.1 <%s>: Recipient address rejected","at":"%s"}\n' \
    "$1" "$2" "$2" "$1" "${1#*@}" "$3" "$4" "$1" "$AT"; }
complained() { # RECIPIENT EMAIL_ID
  printf '%s\t{"v":1,"type":"email.complained","message_id":"<email-%s.fedcba9876543210@sender.test>","email_id":%s,"recipient":"%s","domain":"%s","feedback_type":"abuse","at":"%s"}\n' \
    "$1" "$2" "$2" "$1" "${1#*@}" "$AT"; }

USERS="keep@k.test hard@h.test soft@s.test compl@c.test"
for u in $USERS; do api POST /register "{\"name\":\"${u%@*}\",\"email_id\":\"$u\"}" >/dev/null; done
eq "four users registered" "$(jget "$(api GET /users | cut -d' ' -f2-)" 'len(j)')" 4
wait_for 30 curl -fsS "$W/readyz"; ok $? "/readyz 200: the outbox's producer and the feedback consumer reach Kafka"

# --- an email paused with its copies queued (one copy a minute)
E0=$(send "Queued mail" '"tpm":1')
api POST "/emails/$E0/pause" >/dev/null
sleep 1 # a copy claimed before the pause is sent or released by now
SENT0=$(delivered "Queued mail")
# the copies still queued of the addresses about to be suppressed
WANT_SUPP=0; for u in hard@h.test compl@c.test; do [[ " $SENT0" == *" $u "* ]] || WANT_SUPP=$((WANT_SUPP + 1)); done
echo "# sent before the pause: ${SENT0:-none}"

# --- the events: hard, soft, complaint, malformed, unknown type, duplicate, and a few more bad ones
{
  bounced hard@h.test "$E0" hard 5.1.1
  bounced soft@s.test "$E0" soft 4.2.2
  complained compl@c.test "$E0"
  printf 'x@y.test\t{"v":1,"type":"email.bounced","recipient":\n'
  printf 'keep@k.test\t{"v":1,"type":"email.opened","email_id":%s,"recipient":"keep@k.test","at":"%s"}\n' "$E0" "$AT"
  bounced hard@h.test "$E0" hard 5.1.1
  bounced keep@k.test "$E0" maybe 5.1.1                            # not hard or soft
  printf 'keep@k.test\t{"v":2,"type":"email.complained","recipient":"keep@k.test"}\n' # another version
  printf 'keep@k.test\t{"v":1,"type":"user.registered","email_id":"keep@k.test","name":"k","domain":"k.test","at":"%s"}\n' "$AT"
} | produce
ok $? "kcat produced 9 events onto feedback-events"
wait_for 30 bash -c "[ \$(curl -s $W/metrics | awk '/^feedback_events_total/ {s += \$2} END {print s + 0}') -ge 9 ]"
ok $? "warmup-service consumed them all"
eq "feedback_events_total: hard_bounce 2, soft_bounce 1, complaint 1, invalid 5" \
  "$(fb hard_bounce) $(fb soft_bounce) $(fb complaint) $(fb invalid)" "2 1 1 5"
eq "/suppressions: exactly the hard-bounced and the complained address, with their reasons" \
  "$(suppressions)" "compl@c.test:complaint hard@h.test:hard_bounce"
check "the service keeps running (/healthz)" -- curl -fsS "$W/healthz"
check "  ... and ready" -- curl -fsS "$W/readyz"
check "  ... each bad value logged with its partition and offset" -- bash -c \
  "[ \$(grep -c 'feedback event skipped topic=feedback-events partition=[0-9] offset=[0-9]' $TMP/warmup/out.log) = 5 ]"
wait_for 30 bash -c "[ \"\$(kcat -C -b $BROKERS -t emailId-events -e -q -f '%s\n' 2>/dev/null | grep -c user.unsubscribed)\" = 2 ]"
eq "emailId-events: one user.unsubscribed per suppressed address (none for the duplicate), key = the domain" \
  "$(unsubscribed)" "c.test:compl@c.test:complaint h.test:hard@h.test:hard_bounce"

# --- the paused email: its queued copies of those addresses are dropped
p=$(progress "$E0")
eq "the paused email counts the dropped queued copies as suppressed ($WANT_SUPP)" "$(echo "$p" | cut -d' ' -f5)" "$WANT_SUPP"
api POST "/emails/$E0/rate-limit" '{"tpm":60000}' >/dev/null
api POST "/emails/$E0/resume" >/dev/null
wait_done "$E0"; ok $? "  ... resumed, it finishes"
eq "  ... sent + suppressed = 4" "$(jget "$(curl -s "${AUTH[@]}" "$W/emails/$E0")" 'j["progress"]["sent"] + j["progress"]["suppressed"]')" 4
got=$(delivered "Queued mail")
bad=0; for u in hard@h.test compl@c.test; do [[ " $got" == *" $u "* && " $SENT0" != *" $u "* ]] && bad=1; done
eq "  ... no copy reached smtp-sink for them after the suppression" "$bad" 0
check "  ... the soft-bounced and the other address received theirs" -- bash -c "[[ ' $got' == *' keep@k.test '* && ' $got' == *' soft@s.test '* ]]"

# --- a later broadcast skips the suppressed addresses
E1=$(send "After the bounces")
wait_done "$E1"; ok $? "a new broadcast finishes"
eq "  ... two copies sent, none queued for the suppressed" "$(progress "$E1")" "2 0 0 0 0 done"
eq "  ... smtp-sink got them for keep and soft only" "$(delivered "After the bounces")" "keep@k.test soft@s.test "

# --- restart (SIGTERM): the offsets were committed, nothing is applied again
stop_named warmup; eq "SIGTERM: warmup exits 0" "$STOP_RC" 0
check "  ... no sanitizer report" -- sanitizer_clean warmup
start_warmup warmup "$WP" "${WARMUP[@]}"; ok $? "warmup-service starts again on the same database"
{ complained soft@s.test "$E1"; } | produce
wait_for 30 bash -c "[ \$(curl -s $W/metrics | awk '/^feedback_events_total/ {s += \$2} END {print s + 0}') -ge 1 ]"
ok $? "a new complaint is consumed after the restart"
sleep 1 # anything re-read would be counted by now
eq "  ... and only it: the earlier 9 are not read again (the group's offsets)" \
  "$(fb hard_bounce) $(fb soft_bounce) $(fb complaint) $(fb invalid)" "0 0 1 0"
eq "  ... soft@s.test suppressed now (complaint)" "$(suppressions)" \
  "compl@c.test:complaint hard@h.test:hard_bounce soft@s.test:complaint"
wait_for 30 bash -c "[ \"\$(kcat -C -b $BROKERS -t emailId-events -e -q -f '%s\n' 2>/dev/null | grep -c user.unsubscribed)\" = 3 ]"
eq "  ... one more user.unsubscribed, none repeated" "$(unsubscribed)" \
  "c.test:compl@c.test:complaint h.test:hard@h.test:hard_bounce s.test:soft@s.test:complaint"

# --- kill -9 right after a batch is applied: re-read or not, applied once
{ bounced keep@k.test "$E1" hard 5.1.2; } | produce
wait_for 30 bash -c "curl -s -H 'Authorization: Bearer $TOKEN_API' $W/suppressions | grep -q keep@k.test"
ok $? "a hard bounce for keep@k.test is applied"
kill -KILL "$warmup_PID"; wait "$warmup_PID" 2>/dev/null
start_warmup warmup "$WP" "${WARMUP[@]}"; ok $? "warmup-service starts again after kill -9"
# the killed member leaves the group when its session times out; then the new one is assigned
wait_for 60 bash -c "[ \$(grep -c 'kconsumer: assigned' $TMP/warmup/out.log) -ge 3 ]"
ok $? "  ... its consumer is assigned the partitions"
sleep 1 # what it reads again from the committed offsets is applied by now
echo "# events read again after kill -9: $(fb_all) (hard_bounce $(fb hard_bounce))"
eq "  ... the list is the same" "$(suppressions)" \
  "compl@c.test:complaint hard@h.test:hard_bounce keep@k.test:hard_bounce soft@s.test:complaint"
wait_for 30 bash -c "[ \"\$(kcat -C -b $BROKERS -t emailId-events -e -q -f '%s\n' 2>/dev/null | grep -c user.unsubscribed)\" -ge 4 ]"
sleep 1
eq "  ... exactly one user.unsubscribed for it" "$(unsubscribed)" \
  "c.test:compl@c.test:complaint h.test:hard@h.test:hard_bounce k.test:keep@k.test:hard_bounce s.test:soft@s.test:complaint"
E2=$(send "Nobody left")
wait_done "$E2"; ok $? "a broadcast to four suppressed addresses is done at once"
eq "  ... with no copy" "$(progress "$E2")" "0 0 0 0 0 done"

stop_named warmup; eq "SIGTERM: warmup exits 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup
stop_pid "$SINK_PID"; stop_pid "$BROKER_PID"
finish
