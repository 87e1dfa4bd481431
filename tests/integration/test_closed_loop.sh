#!/bin/bash
# test_closed_loop.sh - placement measured in seed mailboxes steers the
# sender (DESIGN 9.3), end to end against real servers: warmup-service
# sends from an identity through Postfix smtp-sink, the real messages are
# put into Dovecot seed mailboxes (INBOX or Junk), health-service reads
# them over STARTTLS and publishes placement.summary on feedback-events
# (kafka-dev-broker), warmup-service applies WARMUP_POLICY:
#  - 1 of 10 gmail copies in Junk (spam 0.10 > hold 0.05): gmail holding
#    within two check rounds, yahoo still ramping; the next email's gmail
#    copies wait (holding at today's cap) with the reason in the progress,
#    its yahoo copies go;
#  - 10 more in Junk (spam 0.55 > pause 0.20): gmail paused within two
#    rounds, with the reason, counted in warmup_policy_decisions_total and
#    warmup_identity_state;
#  - the operator's resume: gmail ramping again and the waiting copies go.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
. "$(dirname "$0")/dovecot.sh"
for c in dovecot doveadm smtp-sink openssl; do
  command -v "$c" >/dev/null || { echo "Bail out! $c is not installed"; exit 1; }
done
CI=2 # CHECK_INTERVAL

message() { awk 'body || !/^X-[A-Za-z-]+: / {body = 1; print}' "$1"; }
# copies SUBJECT DOMAIN - the sink's files of that email to that domain
copies() { grep -l "^Subject: $1\$" "$TMP"/sink/msg.* 2>/dev/null | xargs -r grep -l "^X-Rcpt-Args: <[^@]*@$2>" 2>/dev/null | sort; }
# place FOLDER FILE... - the real messages into seed1's (gmail) or seed2's (yahoo) mailbox
place() { local folder=$1 box=$2 f; shift 2
  for f in "$@"; do message "$f" | put_message "$DC" "$box" "$folder" 0 >/dev/null || return 1; done; }
gmail() { jget "$(curl -s "$W/identities/$IID")" "$1"; }
now() { $PY -c 'import time; print("%.1f" % time.time())'; }

gen_certs "$TMP/certs" >/dev/null 2>&1
start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
DC=$TMP/dovecot DP=$(freeport) DPS=$(freeport)
start_dovecot "$DC" "$DP" "$DPS" "$TMP/certs"; ok $? "Dovecot starts"
SP=$(freeport); start_smtp_sink "$SP" "$TMP/sink" --dump; ok $? "smtp-sink starts"
printf 'password\n' >"$TMP/seed.pw"; chmod 600 "$TMP/seed.pw"
cat >"$TMP/loops.json" <<JSON
{"gmail.test": {"loop": "imap", "host": "localhost", "port": $DP, "tls": "starttls", "user": "seed1@gmail.test",
                "password_file": "$TMP/seed.pw", "ca_file": "$TMP/certs/ca.pem", "timeout_ms": 5000},
 "yahoo.test": {"loop": "imap", "host": "localhost", "port": $DP, "tls": "starttls", "user": "seed2@gmail.test",
                "password_file": "$TMP/seed.pw", "ca_file": "$TMP/certs/ca.pem", "timeout_ms": 5000}}
JSON
echo '[{"provider":"gmail","domains":["gmail.test"]},{"provider":"yahoo","domains":["yahoo.test"]}]' >"$TMP/throttles.json"
HP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
start_health health "$HP" CHECK_INTERVAL=$CI FEEDBACK_LOOPS_FILE="$TMP/loops.json" THROTTLES_FILE="$TMP/throttles.json"
ok $? "health-service starts (IMAP seed mailboxes, CHECK_INTERVAL=$CI)"
start_warmup warmup "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP SMTP_TLS=none \
  MESSAGE_ID_DOMAIN=w.test THROTTLES_FILE="$TMP/throttles.json" WARMUP_POLICY='{"min_checked":10}' LOG_LEVEL=info
ok $? "warmup-service starts (WARMUP_POLICY min_checked 10)"

TODAY=$($PY -c 'import datetime; print(datetime.datetime.now(datetime.timezone.utc).date().isoformat())')
r=$(http POST "$W/identities" '{"address":"news@acme.test","warmup":{"start_per_day":1000000,"growth_pct":10,"max_per_day":5000000,"start_date":"'"$TODAY"'"}}')
eq "POST /identities -> 201" "${r%% *}" 201
IID=$(jget "${r#* }" 'j["id"]')
$PY -c '
print("name,email_id")
for i in range(10): print(f"G{i},g{i}@gmail.test")
for i in range(5): print(f"Y{i},y{i}@yahoo.test")' | curl -s -o /dev/null -H 'Content-Type: text/csv' --data-binary @- "$W/users/import"
r=$(http POST "$W/send" '{"from":"news@acme.test","subject":"One","body":"Hello"}')
eq "email One -> 202" "${r%% *}" 202
wait_for 30 bash -c "[ \$(grep -l '^Subject: One' $TMP/sink/msg.* 2>/dev/null | wc -l) -ge 15 ]"
ok $? "email One: 15 copies sent (10 gmail, 5 yahoo)"

# round 1: 9 gmail copies in INBOX, 1 in Junk; yahoo all INBOX
mapfile -t G1 < <(copies One gmail.test); mapfile -t Y1 < <(copies One yahoo.test)
eq "10 gmail and 5 yahoo copies dumped" "${#G1[@]} ${#Y1[@]}" "10 5"
T0=$(now)
place INBOX seed1@gmail.test "${G1[@]:0:9}" && place Junk seed1@gmail.test "${G1[9]}" && place INBOX seed2@gmail.test "${Y1[@]}"
ok $? "real messages placed: gmail 9 INBOX + 1 Junk, yahoo 5 INBOX"
wait_for $((2 * CI + 10)) bash -c "curl -s $W/identities/$IID | grep -q '\"gmail\": *{[^}]*\"state\": *\"holding\"'"
ok $? "gmail holding within two check rounds (+ Kafka): $($PY -c "print('%.1f s' % ($(now) - $T0))")"
eq "gmail: the rates of the summary" "$(gmail '"%s %.2f %.2f %d" % (j["providers"]["gmail"]["state"], j["providers"]["gmail"]["spam_rate"], j["providers"]["gmail"]["inbox_rate"], j["providers"]["gmail"]["checked"])')" "holding 0.10 0.90 10"
eq "yahoo still ramping" "$(gmail 'j["providers"]["yahoo"]["state"]')" ramping
eq "the identity is holding, naming gmail" "$(gmail '"%s %s" % (j["today"]["state"], "gmail" in j["today"]["reason"])')" "holding True"

# email Two: gmail holds at today's cap (10), yahoo's copies go
r=$(http POST "$W/send" '{"from":"news@acme.test","subject":"Two","body":"Hello"}')
E2=$(jget "${r#* }" 'j["email_id"]')
wait_for 20 bash -c "[ \$(grep -l '^Subject: Two' $TMP/sink/msg.* 2>/dev/null | wc -l) -ge 5 ]"
ok $? "email Two: its 5 yahoo copies sent"
sleep 2
eq "email Two: no gmail copy sent while gmail holds at today's cap" "$(copies Two gmail.test | wc -l)" 0
p=$(curl -s "$W/emails/$E2")
eq "email Two: 10 pending" "$(jget "$p" 'j["progress"]["pending"]')" 10
why=$(jget "$p" 'j["progress"].get("reason", "")'); echo "# reason: $why"
check "email Two: the progress names gmail's hold" -- bash -c 'case "$1" in *gmail*holding*) exit 0;; esac; exit 1' _ "$why"

# new gmail users: their backfill (One and Two) waits as well
$PY -c '
print("name,email_id")
for i in range(10, 20): print(f"G{i},g{i}@gmail.test")' | curl -s -o /dev/null -H 'Content-Type: text/csv' --data-binary @- "$W/users/import"
sleep 1
eq "the new gmail users' backfill waits too (gmail holds)" "$(grep -l '^X-Rcpt-Args: <g1[0-9]@gmail.test>' "$TMP"/sink/msg.* 2>/dev/null | wc -l)" 0
# round 2: the seed owner moves One's 9 INBOX copies to Junk (spam 10 of 10)
T1=$(now)
for f in "${G1[@]:0:9}"; do message "$f" | put_message "$DC" seed1@gmail.test Junk 0 >/dev/null; done
rm -f "$DC"/home/seed1@gmail.test/Maildir/cur/* "$DC"/home/seed1@gmail.test/Maildir/new/*
ok $? "the seed owner moved the 9 INBOX copies to Junk (spam 10 of 10)"
wait_for $((2 * CI + 10)) bash -c "curl -s $W/identities/$IID | grep -q '\"gmail\": *{[^}]*\"state\": *\"paused\"'"
ok $? "gmail paused within two check rounds (+ Kafka): $($PY -c "print('%.1f s' % ($(now) - $T1))")"
why=$(gmail 'j["providers"]["gmail"]["reason"]'); echo "# gmail: $why"
check "the pause names the spam rate" -- bash -c 'case "$1" in *spam*) exit 0;; esac; exit 1' _ "$why"
m=$(curl -s "$W/metrics")
check "metrics: a pause decision counted for gmail" -- bash -c "grep -E '^warmup_policy_decisions_total\\{[^}]*provider=\"gmail\"[^}]*decision=\"pause\"' <<<\"\$1\" | grep -qv ' 0\$'" _ "$m"
check "metrics: warmup_identity_state says holding" -- bash -c "grep -qE '^warmup_identity_state\\{[^}]*identity=\"news@acme.test\"[^}]*state=\"holding\"[^}]*\\} 1\$' <<<\"\$1\"" _ "$m"
grep -E '^warmup_(identity_state|policy_decisions_total)' <<<"$m" | sed 's/^/# /'
check "warmup logged the decision" -- grep -q 'provider=gmail.*paused' "$TMP/warmup/out.log"

# the operator resumes: gmail ramping, the waiting copies go
r=$(http POST "$W/identities/$IID/resume" '')
eq "POST /identities/{id}/resume -> 200" "${r%% *}" 200
eq "gmail ramping again after the operator's resume" "$(gmail '"%s %s" % (j["providers"]["gmail"]["state"], "operator" in j["providers"]["gmail"]["reason"])')" "ramping True"
wait_for 30 bash -c "[ \$(grep -l '^Subject: Two' $TMP/sink/msg.* 2>/dev/null | wc -l) -ge 25 ]"
ok $? "email Two's 20 gmail copies (10 + the new users' backfill) sent after the resume"
eq "email Two done: 25 sent, none pending" "$(jget "$(curl -s "$W/emails/$E2")" '"%d %d %s" % (j["progress"]["sent"], j["progress"]["pending"], j["progress"].get("reason"))')" "25 0 None"
stop_named warmup; eq "warmup: SIGTERM exit 0" "$STOP_RC" 0
stop_named health; eq "health: SIGTERM exit 0" "$STOP_RC" 0
check "no sanitizer report" -- bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' $TMP/warmup/out.log $TMP/health/out.log"
stop_dovecot "$DC"
finish
