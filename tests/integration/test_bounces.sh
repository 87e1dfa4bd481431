#!/bin/bash
# test_bounces.sh - the health service's bounce mailbox end to end against
# real servers (TAP): kafka-dev-broker (with feedback-events), a Dovecot
# holding the bounce mailbox (read over STARTTLS, verified against the test
# CA), and REAL delivery status notifications: a private Postfix
# (tests/fixtures/bounces/postfix_dsn.sh) receives copies sent with VERP
# envelope senders, bounces them (unknown local user: 5.1.1; a next hop
# answering 500: 5.3.0, RET=HDRS; a next hop answering 450, tried once:
# 4.3.0) and delivers its DSNs into the Dovecot Maildir through virtual(8).
# ARF complaint reports (RFC 5965 example, Yahoo, Microsoft JMRP-like and
# AOL-like shapes), an authentication-failure report, a real Postfix delay
# warning and malformed messages come from tests/fixtures/bounces.
# The copies are tracked from email.sent events on email-events.
#
# Proves: each hard bounce, soft bounce and complaint yields exactly one
# event on feedback-events (read back with kcat) with the exact fields,
# keyed by the recipient; /mail_stats (email and copy) and /domains count
# bounced and complained; processed reports are \Seen, malformed and
# unmatched ones (a forged token, a token that is no token, a DSN for an
# address we never sent to) stay unseen, are counted and logged once with
# their UID, publish nothing, and the service keeps running; a restart
# publishes nothing again; with Kafka down a new bounce is neither
# published nor flagged, and is published once and flagged after Kafka is
# back; with processed_folder a processed report is moved there (UID MOVE)
# and the unseen ones stay; SIGTERM exits 0 with no sanitizer report.
#
# The bounce mailbox is Dovecot's seed2@gmail.test (dovecot.sh makes two
# users; the name does not matter here). Needs root (the private Postfix).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
. "$(dirname "$0")/dovecot.sh"
FIX="$SRC_DIR/tests/fixtures/bounces"
. "$FIX/postfix_dsn.sh"

if [ "$(id -u)" != 0 ]; then echo "1..0 # SKIP the private Postfix needs root"; exit 0; fi
for b in "$BROKER_BIN" "$HEALTH_BIN"; do
  [ -x "$b" ] || { echo "Bail out! $b is missing (build first)"; exit 1; }
done
for c in dovecot doveadm postfix smtp-sink kcat openssl; do
  command -v "$c" >/dev/null || { echo "Bail out! $c is not installed"; exit 1; }
done

# --- servers -------------------------------------------------------------------
mkdir -p "$TMP/broker"
"$BROKER_BIN" -n 1 -p 3 -f "$TMP/broker/bootstrap" -t email-events -t emailId-events \
  -t feedback-events </dev/null >/dev/null 2>"$TMP/broker/broker.log" &
BROKER_PID=$!; track $BROKER_PID
wait_for 10 test -s "$TMP/broker/bootstrap"; ok $? "kafka-dev-broker starts (with feedback-events)" || { finish; exit 1; }
BROKERS=$(head -1 "$TMP/broker/bootstrap")

gen_certs "$TMP/certs" >/dev/null 2>&1
DC=$TMP/dovecot DP=$(freeport) DPS=$(freeport)
start_dovecot "$DC" "$DP" "$DPS" "$TMP/certs"; ok $? "dovecot starts" || { finish; exit 1; }
BOX=seed2@gmail.test
MD=$DC/home/$BOX/Maildir

HARD=$(freeport) SOFT=$(freeport) PP=$(freeport)
smtp-sink -u nobody -f rcpt "127.0.0.1:$HARD" 100 >/dev/null 2>&1 & SINK1=$!; track $SINK1
smtp-sink -u nobody -r rcpt "127.0.0.1:$SOFT" 100 >/dev/null 2>&1 & SINK2=$!; track $SINK2
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$HARD && exec 4<>/dev/tcp/127.0.0.1/$SOFT"
postfix_start "$TMP/pf" "$PP" "$HARD" "$SOFT" "$DC/home" "$BOX/Maildir"
ok $? "a private Postfix starts (DSNs into the Dovecot Maildir)" || { finish; exit 1; }
trap 'postfix_stop "$TMP/pf"; cleanup' EXIT

printf 'password\n' >"$TMP/box.pw"
MAILBOX="{\"host\":\"localhost\",\"port\":$DP,\"tls\":\"starttls\",\"user\":\"$BOX\",\"password_file\":\"$TMP/box.pw\",\"ca_file\":\"$TMP/certs/ca.pem\",\"timeout_ms\":5000}"
HP=$(freeport); H=http://127.0.0.1:$HP
start_health health "$HP" CHECK_INTERVAL=1 BOUNCE_MAILBOX="$MAILBOX"
ok $? "health-service starts with BOUNCE_MAILBOX" || { finish; exit 1; }

# --- the copies ----------------------------------------------------------------
# sent COPY-MID EMAIL_ID RECIPIENT - an email.sent event on email-events
sent() { local d=${3#*@}
  printf '%s\t{"v":1,"type":"email.sent","message_id":"%s","broadcast_id":"<email-%s@w.test>","email_id":%s,"recipient":"%s","domain":"%s","smtp_client":"custom","sent_at":"2026-12-05T01:00:00.000Z"}\n' \
    "$1" "$1" "$2" "$2" "$3" "$d"; }
# email 7: the fixtures' copies; email 8: the live DSNs
{
  sent '<email-7.3333333333333333@w.test>' 7 z@soft.test
  sent '<email-7.4444444444444444@w.test>' 7 reader@example.test
  sent '<email-7.5555555555555555@w.test>' 7 someone@yahoo.test
  sent '<email-7.6666666666666666@w.test>' 7 h@hotmail.test
  sent '<email-7.7777777777777777@w.test>' 7 a@aol.test
  sent '<email-7.8888888888888888@w.test>' 7 other@receiver.test
  sent '<email-8.aaaaaaaaaaaaaaaa@w.test>' 8 nouser1@rcpt.test
  sent '<email-8.bbbbbbbbbbbbbbbb@w.test>' 8 x@hard.test
  sent '<email-8.cccccccccccccccc@w.test>' 8 y@soft.test
  sent '<email-8.dddddddddddddddd@w.test>' 8 real@rcpt.test
  sent '<email-8.ffffffffffffffff@w.test>' 8 nouser2@rcpt.test
  sent '<email-8.1212121212121212@w.test>' 8 nouser5@rcpt.test
} | kcat -P -b "$BROKERS" -t email-events -K $'\t' 2>"$TMP/kcat.err"
ok $? "12 email.sent events produced"
tracked() { [ "$(jget "$(curl -s "$H/mail_stats?email_id=$1")" 'j["tracked"]' 2>/dev/null)" = "$2" ]; }
wait_for 30 tracked 7 6 && wait_for 10 tracked 8 6; ok $? "health tracks the 12 copies"

# --- the reports ---------------------------------------------------------------
# live DSNs: postfix_send PORT ENVELOPE-SENDER RECIPIENT MESSAGE-ID [RET]
postfix_send "$PP" bounces+8.aaaaaaaaaaaaaaaa@bounce.test nouser1@rcpt.test '<email-8.aaaaaaaaaaaaaaaa@w.test>' &&
  postfix_send "$PP" bounces+8.bbbbbbbbbbbbbbbb@bounce.test x@hard.test '<email-8.bbbbbbbbbbbbbbbb@w.test>' HDRS &&
  postfix_send "$PP" bounces+8.cccccccccccccccc@bounce.test y@soft.test '<email-8.cccccccccccccccc@w.test>' &&
  postfix_send "$PP" bounces+8.dddddddddddddddd@bounce.test someone-else@rcpt.test '<email-8.dddddddddddddddd@w.test>' &&
  postfix_send "$PP" bounces+8.eeeeeeeeeeeeeeee@bounce.test nouser3@rcpt.test '<email-8.eeeeeeeeeeeeeeee@w.test>' &&
  postfix_send "$PP" bounces+not-a-token@bounce.test nouser4@rcpt.test '<not-ours@elsewhere.test>'
ok $? "6 messages handed to Postfix: 3 bounces of copies, an address we never sent to, a forged token, no token"
for f in arf-rfc5965 arf-yahoo arf-microsoft arf-aol arf-auth-failure postfix-delayed \
  malformed-truncated malformed-no-recipient malformed-not-a-report; do
  put_message "$DC" "$BOX" INBOX 0 <"$FIX/$f.eml" >/dev/null || echo "# put $f failed"
done
# metric NAME RESULT - health_bounce_reports_total{result=RESULT}
metric() { curl -s "$H/metrics" | awk -v k="health_bounce_reports_total{result=\"$1\"}" '$1 == k { print $2 }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
# in_box N - the bounce mailbox holds at least N messages
in_box() { [ "$(find "$MD/new" "$MD/cur" -type f 2>/dev/null | wc -l)" -ge "$1" ]; }
wait_for 60 in_box 15
ok $? "15 reports in the bounce mailbox (6 real Postfix DSNs, 9 fixtures)"
wait_for 60 metric_is bounced 3 && wait_for 20 metric_is complained 4 && wait_for 20 metric_is ignored 2 &&
  wait_for 20 metric_is unmatched 3 && wait_for 20 metric_is malformed 3
ok $? "reports counted: bounced 3, complained 4, ignored 2, unmatched 3, malformed 3" ||
  curl -s "$H/metrics" | grep health_bounce | sed 's/^/#   /'

# --- the events ----------------------------------------------------------------
events() { kcat -C -b "$BROKERS" -t feedback-events -o beginning -e -q -f '%k\t%s\n' 2>/dev/null; }
events >"$TMP/events.tsv"
cat >"$TMP/want.py" <<'PY'
import json, re, sys
got = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if l.strip()]
want = {
 "<email-8.aaaaaaaaaaaaaaaa@w.test>": {"type": "email.bounced", "email_id": 8, "recipient": "nouser1@rcpt.test", "domain": "rcpt.test", "bounce": "hard", "status": "5.1.1", "diagnostic": "X-Postfix; unknown user: \"nouser1\""},
 "<email-8.bbbbbbbbbbbbbbbb@w.test>": {"type": "email.bounced", "email_id": 8, "recipient": "x@hard.test", "domain": "hard.test", "bounce": "hard", "status": "5.3.0", "diagnostic": "smtp; 500 5.3.0 Error: command failed"},
 "<email-8.cccccccccccccccc@w.test>": {"type": "email.bounced", "email_id": 8, "recipient": "y@soft.test", "domain": "soft.test", "bounce": "soft", "status": "4.3.0", "diagnostic": "smtp; 450 4.3.0 Error: command failed"},
 "<email-7.4444444444444444@w.test>": {"type": "email.complained", "email_id": 7, "recipient": "reader@example.test", "domain": "example.test", "feedback_type": "abuse"},
 "<email-7.5555555555555555@w.test>": {"type": "email.complained", "email_id": 7, "recipient": "someone@yahoo.test", "domain": "yahoo.test", "feedback_type": "abuse"},
 "<email-7.6666666666666666@w.test>": {"type": "email.complained", "email_id": 7, "recipient": "h@hotmail.test", "domain": "hotmail.test", "feedback_type": "abuse"},
 "<email-7.7777777777777777@w.test>": {"type": "email.complained", "email_id": 7, "recipient": "a@aol.test", "domain": "aol.test", "feedback_type": "abuse"},
}
bad = []
seen = {}
for key, val in got:
    j = json.loads(val)
    mid = j.get("message_id")
    seen[mid] = seen.get(mid, 0) + 1
    w = want.get(mid)
    if w is None:
        bad.append("unexpected event " + val); continue
    keys = ["v", "type", "message_id", "email_id", "recipient", "domain"] + (
        ["bounce", "status", "diagnostic"] if w["type"] == "email.bounced" else ["feedback_type"]) + ["at"]
    if list(j.keys()) != keys: bad.append(f"{mid}: fields {list(j.keys())}")
    exp = dict(w, v=1, message_id=mid)
    for k, v in exp.items():
        if j.get(k) != v: bad.append(f"{mid}: {k} = {j.get(k)!r}, want {v!r}")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", j.get("at", "")): bad.append(f"{mid}: at {j.get('at')!r}")
    if key != w["recipient"]: bad.append(f"{mid}: key {key!r}")
for mid in want:
    if seen.get(mid, 0) != 1: bad.append(f"{mid}: {seen.get(mid, 0)} events")
print("\n".join(bad) if bad else "ok")
PY
R=$($PY "$TMP/want.py" "$TMP/events.tsv")
eq "feedback-events: exactly one event per hard bounce, soft bounce and complaint, exact fields, keyed by recipient" "$R" ok
[ "$R" = ok ] || sed 's/^/#   /' "$TMP/events.tsv"
eq "feedback-events: 7 events in all (nothing for the ignored, unmatched or malformed)" "$(wc -l <"$TMP/events.tsv")" 7

# --- the counts ----------------------------------------------------------------
st() { jget "$(curl -s "$H/mail_stats?$1")" "$2" 2>/dev/null; }
eq "/mail_stats email 8: bounced 3, complained 0" "$(st email_id=8 '[j["bounced"], j["complained"]]')" "[3, 0]"
eq "/mail_stats email 7: bounced 0, complained 4" "$(st email_id=7 '[j["bounced"], j["complained"]]')" "[0, 4]"
eq "/mail_stats of the hard-bounced copy" "$(st 'mail_id=<email-8.aaaaaaaaaaaaaaaa@w.test>' '[j["bounced"], j["complained"], j["pending"]]')" "[1, 0, 0]"
eq "/mail_stats of the complained copy" "$(st 'mail_id=<email-7.5555555555555555@w.test>' '[j["bounced"], j["complained"]]')" "[0, 1]"
eq "/mail_stats of the copy whose DSN named another address" "$(st 'mail_id=<email-8.dddddddddddddddd@w.test>' '[j["bounced"], j["complained"]]')" "[0, 0]"
eq "/mail_stats of the delayed copy (no bounce)" "$(st 'mail_id=<email-7.3333333333333333@w.test>' 'j["bounced"]')" "0"
dom() { curl -s "$H/domains" | $PY -c 'import json,sys; d={x["domain"]: x for x in json.load(sys.stdin)}; print([d.get(n, {}).get(sys.argv[1]) for n in sys.argv[2:]])' "$@"; }
eq "/domains bounced: rcpt.test 1, hard.test 1, soft.test 1" "$(dom bounced rcpt.test hard.test soft.test)" "[1, 1, 1]"
eq "/domains complained: yahoo.test 1, aol.test 1, rcpt.test 0" "$(dom complained yahoo.test aol.test rcpt.test)" "[1, 1, 0]"
# pstate DOMAIN STATE - health_placement_copies{domain=DOMAIN,state=STATE} (set at the domain's rounds)
pstate() { curl -s "$H/metrics" | awk -v k="health_placement_copies{domain=\"$1\",state=\"$2\"}" '$1 == k { print $2 }'; }
pstate_is() { [ "$(pstate "$1" "$2")" = "$3" ]; }
wait_for 20 pstate_is yahoo.test complained 1 && pstate_is rcpt.test complained 0
ok $? "health_placement_copies{state=\"complained\"}: yahoo.test 1, rcpt.test 0" || echo "#   got $(pstate yahoo.test complained)"

# --- the mailbox ---------------------------------------------------------------
# unseen - UIDs without \Seen in the bounce mailbox
unseen() { doveadm -c "$DC/dovecot.conf" search -u "$BOX" mailbox INBOX unseen 2>/dev/null | wc -l; }
seen() { doveadm -c "$DC/dovecot.conf" search -u "$BOX" mailbox INBOX seen 2>/dev/null | wc -l; }
eq "processed reports are \\Seen (3 bounces, 4 complaints, 2 ignored)" "$(seen)" 9
eq "unmatched and malformed reports are left unseen (6)" "$(unseen)" 6
# flags MESSAGE-ID - the flags of the report with that Message-ID
flags() { dovecot_flags "$DC" "$BOX" INBOX "$1" | sed 's/^flags=//' | tr -d ' \n'; }
eq "the not-a-report message is unseen" "$(flags '<ooo-1@rcpt.test>')" ""
eq "a complaint report is \\Seen" "$(flags '<1796433670.77@arf.mail.yahoo.test>')" '\Seen'
L=$TMP/health/out.log
eq "one log line per malformed report, with its UID and the reason" "$(grep -c 'bounce report uid=[0-9]* result=malformed: ' "$L")" 3
grep -q 'result=malformed: not a multipart/report' "$L"; ok $? "the reason is logged (not a multipart/report)"
eq "one log line per unmatched report" "$(grep -c 'bounce report uid=[0-9]* result=unmatched: ' "$L")" 3
grep -q 'result=unmatched: .*bounces+8.eeeeeeeeeeeeeeee@bounce.test names no tracked copy' "$L"; ok $? "a forged token is named in its line"
grep -q 'result=unmatched: the report is about someone-else@rcpt.test' "$L"; ok $? "a DSN for an address we never sent to is named"
sleep 2
eq "rounds later: still logged once each" "$(grep -c 'result=malformed: \|result=unmatched: ' "$L")" 6
check "the service keeps running" -- curl -fsS "$H/healthz"

# --- restart: nothing published again --------------------------------------------
stop_named health; eq "health-service exits 0 on SIGTERM" "$STOP_RC" 0
sanitizer_clean health; ok $? "no sanitizer report"
start_health health "$HP" CHECK_INTERVAL=1 BOUNCE_MAILBOX="$MAILBOX"
ok $? "health-service restarts on the same store"
wait_for 20 metric_is malformed 3; ok $? "after the restart the malformed reports are counted once more (new process)"
sleep 2
eq "nothing published again after the restart" "$(events | wc -l)" 7
eq "after the restart: bounced and complained still 3 and 4" "$(st email_id=8 'j["bounced"]') $(st email_id=7 'j["complained"]')" "3 4"
eq "after the restart: no report counted bounced or complained" "$(metric bounced) $(metric complained)" "0 0"

# --- Kafka down: not flagged, published after Kafka is back -----------------------
before=$(seen)
kill -USR1 "$BROKER_PID"
postfix_send "$PP" bounces+8.ffffffffffffffff@bounce.test nouser2@rcpt.test '<email-8.ffffffffffffffff@w.test>'
ok $? "a bounce while Kafka is down"
wait_for 30 in_box 16; ok $? "its DSN reached the mailbox"
wait_for 20 grep -q 'event for report uid=[0-9]* not delivered' "$L"; ok $? "the event is not delivered (message timeout)"
eq "not flagged while Kafka is down" "$(seen)" "$before"
kill -USR2 "$BROKER_PID"
wait_for 40 metric_is bounced 1; ok $? "published once Kafka is back"
eq "then flagged \\Seen" "$(seen)" "$((before + 1))"
events >"$TMP/events2.tsv"
eq "feedback-events: 8 events, the new bounce once" "$(wc -l <"$TMP/events2.tsv") $(grep -c 'email-8.ffffffffffffffff' "$TMP/events2.tsv")" "8 1"
eq "/mail_stats email 8: bounced 4" "$(st email_id=8 'j["bounced"]')" 4

stop_named health; eq "health-service exits 0 on SIGTERM" "$STOP_RC" 0
sanitizer_clean health; ok $? "no sanitizer report"

# --- processed_folder: a processed report is moved, not flagged ------------------
doveadm -c "$DC/dovecot.conf" mailbox create -u "$BOX" Processed
ok $? "a Processed folder"
inbox_before=$(doveadm -c "$DC/dovecot.conf" search -u "$BOX" mailbox INBOX all | wc -l)
start_health health "$HP" CHECK_INTERVAL=1 BOUNCE_MAILBOX="${MAILBOX%\}},\"processed_folder\":\"Processed\"}"
ok $? "health-service starts with processed_folder"
postfix_send "$PP" bounces+8.1212121212121212@bounce.test nouser5@rcpt.test '<email-8.1212121212121212@w.test>'
processed() { [ "$(doveadm -c "$DC/dovecot.conf" search -u "$BOX" mailbox Processed all | wc -l)" = "$1" ]; }
wait_for 40 processed 1; ok $? "the new report was moved to Processed"
eq "INBOX keeps the same messages (the unseen ones are not moved)" "$(doveadm -c "$DC/dovecot.conf" search -u "$BOX" mailbox INBOX all | wc -l)" "$inbox_before"
eq "its event was published once" "$(events | grep -c 'email-8.1212121212121212')" 1
stop_named health; eq "health-service exits 0 on SIGTERM" "$STOP_RC" 0
sanitizer_clean health; ok $? "no sanitizer report"
stop_dovecot
postfix_stop "$TMP/pf"
stop_pid "$SINK1"; stop_pid "$SINK2"; stop_pid "$BROKER_PID"
finish
