#!/bin/bash
# test_reconcile.sh - GET /emails/{id}/reconciliation end to end: email.sent
# and email.failed events on the dev broker, two health services (the store
# in one file and in four) consuming them, the mock feedback loop's rounds
# (answers computed here from the same hash). The report adds up, agrees
# with /mail_stats, names no copy while the window is long; restarted with
# TRACK_WINDOW=60 the copies not found turn from pending to missing, named
# oldest first (100 of 120 for a large email). Bad ids: 400 and 404.
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
cat > "$TMP/loops.json" <<'JSON'
{"a.test": {"loop": "mock", "delivered": 0.5, "spam": 0.2, "opened": 0, "read": 0},
 "b.test": {"loop": "mock", "delivered": 0, "spam": 0, "opened": 0, "read": 0}}
JSON
HP1=$(freeport); HP4=$(freeport)
H1=http://127.0.0.1:$HP1; H4=http://127.0.0.1:$HP4
start_health h1 "$HP1" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json" KAFKA_GROUP_ID=h1 DB_FILES=1
ok $? "health-service starts (one store file)"
start_health h4 "$HP4" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json" KAFKA_GROUP_ID=h4 DB_FILES=4
ok $? "health-service starts (four store files)"

# email 11: 60 copies to a.test sent 50 s ago (one a second later each) and
# 4 dead letters; email 12: 120 copies to b.test (never found) sent 2 h ago,
# produced newest first
$PY - "$TMP" <<'PY'
import datetime, json, sys
now = datetime.datetime.now(datetime.timezone.utc)
iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)
ev = lambda typ, mid, e, rcpt, t, **kw: json.dumps(dict({"v": 1, "type": typ, "message_id": mid,
    "broadcast_id": "<email-%d@w.test>" % e, "email_id": e, "recipient": rcpt,
    "domain": rcpt.split("@")[1], "smtp_client": "custom", "sent_at": iso(t)}, **kw))
with open(sys.argv[1] + "/events.tsv", "w") as f, open(sys.argv[1] + "/sent11.tsv", "w") as s:
    for i in range(60):
        mid = "<email-11.%016x@w.test>" % (i * 0x9E3779B97F4A7C15 % 2**64)
        t = now - datetime.timedelta(seconds=50 - i)
        f.write("u%d@a.test\t%s\n" % (i, ev("email.sent", mid, 11, "u%d@a.test" % i, t)))
        s.write("%s\t%d\n" % (mid, i))
    for i in range(4):
        mid = "<email-11.dead%012d@w.test>" % i
        f.write("d%d@a.test\t%s\n" % (i, ev("email.failed", mid, 11, "d%d@a.test" % i, now,
                                            smtp_reply="550 5.1.1 no such user")))
    for i in reversed(range(120)):
        mid = "<email-12.%03d@w.test>" % i
        t = now - datetime.timedelta(hours=2) + datetime.timedelta(milliseconds=10 * i)
        f.write("v%d@b.test\t%s\n" % (i, ev("email.sent", mid, 12, "v%d@b.test" % i, t)))
PY
kcat -P -b "$BROKERS" -t email-events -K $'\t' <"$TMP/events.tsv" 2>"$TMP/kcat.err"
ok $? "184 events produced (email.sent 180, email.failed 4)"

# the mock's answers for email 11 (FNV-1a of the Message-ID): inbox, spam, and
# the Message-IDs not found in sending order
$PY - "$TMP/sent11.tsv" >"$TMP/want11" <<'PY'
import sys
def fnv(s):
    h = 1469598103934665603
    for b in s.encode():
        h ^= b; h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h
inbox = spam = 0; none = []
for line in open(sys.argv[1]):
    mid, i = line.split()
    u0 = (fnv(mid) & 0xffff) / 65536
    if u0 < 0.5: inbox += 1
    elif u0 < 0.7: spam += 1
    else: none.append(mid)
print(inbox, spam, len(none))
print(" ".join(none))
PY
read -r IN SP NF <"$TMP/want11"
NONE=$(sed -n 2p "$TMP/want11")
echo "# email 11 expected: inbox $IN, spam $SP, not found $NF"

# recon H ID - the report's counts as one line
recon() { curl -s "$1/emails/$2/reconciliation" | $PY -c 'import json,sys; j=json.load(sys.stdin)
print(" ".join(str(j[k]) for k in ("email_id","accepted","tracked","inbox","spam","bounced","complained","pending","missing")), len(j["missing_ids"]))'; }
recon_is() { [ "$(recon "$1" "$2")" = "$3" ]; }
# adds_up H ID - inbox + spam + bounced + complained + unchecked + pending + missing
# = tracked, and tracked, bounced, complained, unchecked, pending as /mail_stats says
adds_up() { $PY - "$(curl -s "$1/emails/$2/reconciliation")" "$(curl -s "$1/mail_stats?email_id=$2")" <<'PY'
import json, sys
r, m = json.loads(sys.argv[1]), json.loads(sys.argv[2])
s = sum(r[k] for k in ("inbox", "spam", "bounced", "complained", "unchecked", "pending", "missing"))
same = (r["tracked"], r["inbox"], r["spam"], r["bounced"], r["complained"], r["unchecked"], r["pending"] + r["missing"]) == \
       (m["tracked"], m["delivered"], m["spam"], m["bounced"], m["complained"], m["unchecked"], m["pending"])
sys.exit(0 if s == r["tracked"] and same else 1)
PY
}
want11="11 60 64 $IN $SP 4 0 $NF 0 0"
want12="12 120 120 0 0 0 0 120 0 0"
for f in 1 4; do
  eval "H=\$H$f"
  wait_for 60 recon_is "$H" 11 "$want11"
  ok $? "DB_FILES=$f: email 11 after the rounds: accepted 60, tracked 64, inbox/spam as the mock says, 4 bounced, the rest pending" ||
    echo "#   got '$(recon "$H" 11)', want '$want11'"
  check "DB_FILES=$f: email 11 adds up and agrees with /mail_stats" -- adds_up "$H" 11
  wait_for 20 recon_is "$H" 12 "$want12"
  ok $? "DB_FILES=$f: email 12: 120 pending within the 7-day window, none named" || echo "#   got '$(recon "$H" 12)'"
  check "DB_FILES=$f: email 12 adds up" -- adds_up "$H" 12
done

# bad ids
for f in 1 4; do
  eval "H=\$H$f"
  r=$(http GET "$H/emails/999999/reconciliation")
  eq "DB_FILES=$f: unknown email -> 404 JSON error" "$(jget "${r#* }" 'j["error"]["code"]') ${r%% *}" "not_found 404"
  for bad in abc 0 -1 1x 99999999999999999999 %20 ; do
    r=$(http GET "$H/emails/$bad/reconciliation")
    eq "DB_FILES=$f: id '$bad' -> 400 JSON error" "$(jget "${r#* }" 'j["error"]["code"]' 2>/dev/null) ${r%% *}" "invalid_id 400"
  done
done

# restarted with a short window: the copies not found are missing now
stop_named h1; stop_named h4
start_health h1 "$HP1" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json" KAFKA_GROUP_ID=h1 TRACK_WINDOW=60
ok $? "one-file health-service restarted with TRACK_WINDOW=60"
start_health h4 "$HP4" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json" KAFKA_GROUP_ID=h4 TRACK_WINDOW=60
ok $? "four-file health-service restarted with TRACK_WINDOW=60"
want11="11 60 64 $IN $SP 4 0 0 $NF $NF"
want12="12 120 120 0 0 0 0 0 120 100"
want12_ids=$($PY -c 'print(" ".join("<email-12.%03d@w.test>" % i for i in range(100)))')
for f in 1 4; do
  eval "H=\$H$f"
  # the last copy was sent 9 s after the events were made: it is missing
  # 69 s after that, however soon the restart came
  wait_for 90 recon_is "$H" 11 "$want11"
  ok $? "DB_FILES=$f: email 11 sent over 60 s ago: every copy not found is missing" ||
    echo "#   got '$(recon "$H" 11)', want '$want11'"
  r=$(curl -s "$H/emails/11/reconciliation")
  eq "DB_FILES=$f: email 11's missing Message-IDs, oldest first" "$(jget "$r" '" ".join(j["missing_ids"])')" "$NONE"
  check "DB_FILES=$f: email 11 adds up and agrees with /mail_stats" -- adds_up "$H" 11
  eq "DB_FILES=$f: email 12: 120 missing, 100 named" "$(recon "$H" 12)" "$want12"
  r=$(curl -s "$H/emails/12/reconciliation")
  eq "DB_FILES=$f: email 12: the 100 oldest, oldest first" "$(jget "$r" '" ".join(j["missing_ids"])')" "$want12_ids"
done
eq "both stores answer alike" "$(curl -s "$H1/emails/11/reconciliation")" "$(curl -s "$H4/emails/11/reconciliation")"
check "the four-file store has four files" -- test -e "$TMP/h4/health.db.shard3"

stop_named h1; stop_named h4
check "no sanitizer report (one file)" -- sanitizer_clean h1
check "no sanitizer report (four files)" -- sanitizer_clean h4
stop_pid "$BROKER_PID"
finish
