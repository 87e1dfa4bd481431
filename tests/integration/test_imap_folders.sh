#!/bin/bash
# test_imap_folders.sh - the IMAP loop's folder names (health-service/loops/
# loop_imap_conn.c; issue 18 item 5) end to end against real servers
# (TAP): kafka-dev-broker, the health service with imap domain loops in
# FEEDBACK_LOOPS_FILE, copies as email.sent events produced with kcat and
# delivered with dovecot-lda into Dovecots laid out as Gmail, Outlook, and
# with no \Junk at all (dovecot.sh DC_LAYOUT=gmail|outlook|byname).
#   gm.test     -> seed1 on G (gmail): discovered
#   gmconf.test -> seed2 on G: "spam": "[Gmail]/Trash" (configured)
#   ol.test     -> seed1 on O (outlook): discovered, engage rescue
#   nm.test     -> seed1 on N (byname): discovered by name
#
# Proves: "[Gmail]/Spam" and "Junk Email" are found by SPECIAL-USE \Junk
# (log spam_from=special-use) and their copies count as spam; a copy also
# in "[Gmail]/All Mail" (\All) counts once from INBOX or Spam, and one
# only in All Mail or in Trash stays pending (All Mail and Trash are never
# read); a configured "spam" wins over discovery (spam_from=settings: a
# copy in "[Gmail]/Trash" is spam, one in "[Gmail]/Spam" pending); with no
# \Junk the folder is found by name, "Junk E-mail" (spam_from=name), never
# the \Trash mailbox named "Spam"; names with brackets and spaces go to the
# server intact (EXAMINE/SELECT, and a rescue by UID MOVE out of "Junk
# Email"); SIGTERM exits 0 with no sanitizer report.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
. "$(dirname "$0")/dovecot.sh"

for b in "$BROKER_BIN" "$HEALTH_BIN"; do
  [ -x "$b" ] || { echo "Bail out! $b is missing (build first)"; exit 1; }
done
for c in dovecot doveadm kcat openssl; do
  command -v "$c" >/dev/null || { echo "Bail out! $c is not installed"; exit 1; }
done

S1=seed1@gmail.test
S2=seed2@gmail.test

# deliver DIR USER FOLDER ID - a message with Message-ID ID through dovecot-lda
deliver() {
  printf 'From: Sender <sender@example.test>\r\nTo: %s\r\nSubject: msg %s\r\nDate: %s\r\nMessage-ID: %s\r\n\r\nHello\r\n' \
    "$2" "$4" "$(date -R)" "$4" | lda_deliver "$1" "$2" "$3"
}
# has DIR USER FOLDER ID - how many messages in FOLDER have Message-ID ID
has() { doveadm -c "$1/dovecot.conf" -f flow search -u "$2" mailbox "$3" header Message-ID "$4" 2>/dev/null | grep -c .; }

# --- servers -----------------------------------------------------------------------
start_broker "$TMP/broker"
ok $? "kafka-dev-broker starts" || { finish; exit 1; }
gen_certs "$TMP/certs" >/dev/null 2>&1
G=$TMP/dovecot-g GP=$(freeport) GPS=$(freeport)
DC_LAYOUT=gmail start_dovecot "$G" "$GP" "$GPS" "$TMP/certs"
ok $? "Dovecot G starts (Gmail layout)" || { finish; exit 1; }
GPID=$DOVECOT_PID
O=$TMP/dovecot-o OP=$(freeport) OPS=$(freeport)
DC_LAYOUT=outlook start_dovecot "$O" "$OP" "$OPS" "$TMP/certs"
ok $? "Dovecot O starts (Outlook layout)" || { finish; exit 1; }
OPID=$DOVECOT_PID
N=$TMP/dovecot-n NP=$(freeport) NPS=$(freeport)
DC_LAYOUT=byname start_dovecot "$N" "$NP" "$NPS" "$TMP/certs"
ok $? "Dovecot N starts (no \\Junk; a \\Trash named Spam)" || { finish; exit 1; }
NPID=$DOVECOT_PID

# Gmail keeps every message in All Mail too
deliver "$G" $S1 INBOX '<g-in@t.test>' && deliver "$G" $S1 '[Gmail]/All Mail' '<g-in@t.test>' &&
  deliver "$G" $S1 '[Gmail]/Spam' '<g-spam@t.test>' && deliver "$G" $S1 '[Gmail]/All Mail' '<g-spam@t.test>' &&
  deliver "$G" $S1 '[Gmail]/All Mail' '<g-all@t.test>' && deliver "$G" $S1 '[Gmail]/Trash' '<g-trash@t.test>' &&
  deliver "$G" $S2 INBOX '<c-in@t.test>' && deliver "$G" $S2 '[Gmail]/Trash' '<c-trash@t.test>' &&
  deliver "$G" $S2 '[Gmail]/Spam' '<c-spam@t.test>' &&
  deliver "$O" $S1 INBOX '<o-in@t.test>' && deliver "$O" $S1 'Junk Email' '<o-junk@t.test>' &&
  deliver "$O" $S1 'Junk Email' '<o-other@t.test>' && deliver "$O" $S1 'Deleted Items' '<o-del@t.test>' &&
  deliver "$N" $S1 INBOX '<n-in@t.test>' && deliver "$N" $S1 'Junk E-mail' '<n-junk@t.test>' &&
  deliver "$N" $S1 Spam '<n-trash@t.test>'
ok $? "dovecot-lda delivers 16 messages into the three layouts' folders"
eq "G seed1: [Gmail]/All Mail holds 3 (two of them also in INBOX / Spam)" "$(has "$G" $S1 '[Gmail]/All Mail' '@t.test>')" 3

printf 'password\n' >"$TMP/seed.pw"
chmod 600 "$TMP/seed.pw"
imap() { printf '{"loop": "imap", "host": "localhost", "port": %s, "tls": "starttls", "user": "%s", "password_file": "%s", "ca_file": "%s", "timeout_ms": 5000%s}' \
  "$1" "$2" "$TMP/seed.pw" "$TMP/certs/ca.pem" "${3:+, $3}"; }
cat >"$TMP/loops.json" <<JSON
{"gm.test": $(imap "$GP" $S1),
 "gmconf.test": $(imap "$GP" $S2 '"spam": "[Gmail]/Trash"'),
 "ol.test": $(imap "$OP" $S1 '"engage": {"rescue": true}'),
 "nm.test": $(imap "$NP" $S1)}
JSON
HP=$(freeport)
H=http://127.0.0.1:$HP
start_health health "$HP" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json"
ok $? "health-service starts (four imap loops)" || { finish; exit 1; }
LOG=$TMP/health/out.log

produce_sent '<g-in@t.test>=a1@gm.test' '<g-spam@t.test>=a2@gm.test' '<g-all@t.test>=a3@gm.test' \
  '<g-trash@t.test>=a4@gm.test' '<c-in@t.test>=b1@gmconf.test' '<c-trash@t.test>=b2@gmconf.test' \
  '<c-spam@t.test>=b3@gmconf.test' '<o-in@t.test>=c1@ol.test' '<o-junk@t.test>=c2@ol.test' \
  '<o-del@t.test>=c3@ol.test' '<n-in@t.test>=d1@nm.test' '<n-junk@t.test>=d2@nm.test' \
  '<n-trash@t.test>=d3@nm.test'
ok $? "13 email.sent events produced"

# stats ID - "delivered spam pending" of the copy
stats() { jget "$(curl -s "$H/mail_stats?mail_id=$1")" '" ".join(str(j.get(k)) for k in ("delivered","spam","pending"))' 2>/dev/null; }
is() { [ "$(stats "$1")" = "$2" ]; }
# expect ID "delivered spam pending" WHAT
expect() { wait_for 30 is "$1" "$2"; ok $? "$3 ($1: $(stats "$1"))"; }
# rounds DOMAIN K - wait until K more rounds of DOMAIN were logged
rounds() { local want=$(($(grep -c "imap loop round domain=$1 " "$LOG") + $2))
  wait_for 30 bash -c "[ \$(grep -c 'imap loop round domain=$1 ' '$LOG') -ge $want ]"; }

# --- Gmail ---------------------------------------------------------------------------
check "gm.test: spam=\"[Gmail]/Spam\" found by \\Junk (spam_from=special-use)" -- \
  wait_for 30 grep -q 'imap loop connected domain=gm.test .*spam="\[Gmail\]/Spam" spam_from=special-use' "$LOG"
expect '<g-spam@t.test>' "0 1 0" "gm.test: the copy in [Gmail]/Spam (and All Mail) is spam"
expect '<g-in@t.test>' "1 0 0" "gm.test: the copy in INBOX (and All Mail) is delivered"
rounds gm.test 2
ok $? "two more gm.test rounds"
eq "gm.test: the copy only in [Gmail]/All Mail stays pending (All Mail is never read)" "$(stats '<g-all@t.test>')" "0 0 1"
eq "gm.test: the copy in [Gmail]/Trash stays pending" "$(stats '<g-trash@t.test>')" "0 0 1"

# --- a configured spam folder --------------------------------------------------------------
check "gmconf.test: spam=\"[Gmail]/Trash\" from the settings" -- \
  wait_for 30 grep -q 'imap loop connected domain=gmconf.test .*spam="\[Gmail\]/Trash" spam_from=settings' "$LOG"
expect '<c-trash@t.test>' "0 1 0" "gmconf.test: the copy in the configured folder is spam"
expect '<c-in@t.test>' "1 0 0" "gmconf.test: the INBOX copy is delivered"
rounds gmconf.test 2
ok $? "two more gmconf.test rounds"
eq "gmconf.test: the copy in [Gmail]/Spam stays pending (the setting wins over \\Junk)" "$(stats '<c-spam@t.test>')" "0 0 1"

# --- Outlook ---------------------------------------------------------------------------------
check "ol.test: spam=\"Junk Email\" found by \\Junk (spam_from=special-use)" -- \
  wait_for 30 grep -q 'imap loop connected domain=ol.test .*spam="Junk Email" spam_from=special-use' "$LOG"
expect '<o-junk@t.test>' "0 1 0" "ol.test: the copy in Junk Email is spam"
expect '<o-in@t.test>' "1 0 0" "ol.test: the INBOX copy is delivered"
rounds ol.test 2
ok $? "two more ol.test rounds"
eq "ol.test: the copy in Deleted Items (\\Trash) stays pending" "$(stats '<o-del@t.test>')" "0 0 1"
eq "ol.test: rescued out of \"Junk Email\" (UID MOVE to INBOX): INBOX has it, Junk Email not; the other mail stays" \
  "$(has "$O" $S1 INBOX '<o-junk@t.test>') $(has "$O" $S1 'Junk Email' '<o-junk@t.test>') $(has "$O" $S1 'Junk Email' '<o-other@t.test>')" "1 0 1"

# --- no \Junk: by name -----------------------------------------------------------------------
check "nm.test: spam=\"Junk E-mail\" found by name (spam_from=name), not the \\Trash named Spam" -- \
  wait_for 30 grep -q 'imap loop connected domain=nm.test .*spam="Junk E-mail" spam_from=name' "$LOG"
expect '<n-junk@t.test>' "0 1 0" "nm.test: the copy in Junk E-mail is spam"
expect '<n-in@t.test>' "1 0 0" "nm.test: the INBOX copy is delivered"
rounds nm.test 2
ok $? "two more nm.test rounds"
eq "nm.test: the copy in the \\Trash folder named Spam stays pending" "$(stats '<n-trash@t.test>')" "0 0 1"

check "no round failed and no connect failed" -- bash -c "! grep -qE 'imap loop (round|connect) failed' '$LOG'"

# --- stop --------------------------------------------------------------------------------
stop_named health
eq "health-service exits 0 on SIGTERM" "$STOP_RC" 0
check "no sanitizer report in health-service's log" -- sanitizer_clean health
stop_dovecot "$GPID"
stop_dovecot "$OPID"
stop_dovecot "$NPID"
finish
