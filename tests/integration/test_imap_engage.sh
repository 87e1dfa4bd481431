#!/bin/bash
# test_imap_engage.sh - the IMAP loop's round and engagement (health-service/
# loops/loop_imap.c, loop_imap_folder.c; DESIGN 9.4) end to end against real
# servers (TAP): kafka-dev-broker, the health service with three imap domain
# loops in FEEDBACK_LOOPS_FILE, copies as email.sent events produced with
# kcat, and three Dovecots (one without MOVE, DC_NO_MOVE=1; one without MOVE
# and UIDPLUS, DC_NO_UIDPLUS=1) read over STARTTLS verified against the test
# CA.
#   engage.test -> seed1 on Dovecot A, engage rescue + mark_read + flag
#   look.test   -> seed2 on Dovecot A, no engage (read-only: EXAMINE)
#   nomove.test -> seed1 on Dovecot B (no MOVE), engage rescue
#   noplus.test -> seed1 on Dovecot C (neither MOVE nor UIDPLUS), engage rescue
#
# Proves: copies in INBOX and Junk are found; rescue moves exactly the copy
# found in Junk to INBOX (UID MOVE), with \Seen and \Flagged set before the
# move, and nothing else (Junk's other mail, one of them marked \Deleted by
# someone else, stays: counts before and after with doveadm); mark_read
# and flag set \Seen and \Flagged on the tracked copies only (an untracked
# message keeps its flags); /mail_stats per copy after the actions (opened,
# read, spam and rescued for the rescued copy); read-only without engage
# (a copy's \Seen unchanged, Junk untouched); without MOVE the rescue is
# UID COPY + STORE \Deleted + UID EXPUNGE of exactly that UID (the other
# \Deleted message survives); with neither MOVE nor UIDPLUS no rescue at
# all (the copy stays spam in Junk, one warning); a message delivered (dovecot-lda) after the
# folder was read and BEFORE its email.sent event is found once the copy
# is tracked; a copy the user moves from INBOX to Junk between rounds
# becomes spam; a reconnect (Dovecot restarted) does not read the folders
# again; a round over 203 copies costs a handful of IMAP commands
# (the round's debug line "commands=N"); SIGTERM exits 0 with no sanitizer
# report.
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
mkmsg() {
  printf 'From: Sender <sender@example.test>\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n\r\nHello\r\n' \
    "$S1" "msg $1" "$(date -R)" "$1"
}
# put DIR USER FOLDER ID [FLAGS] - a message with Message-ID ID into the Maildir
put() { mkmsg "$4" | put_message "$1" "$2" "$3" 0 "${5-}" >/dev/null; }
# count DIR USER FOLDER - messages in FOLDER (\Deleted ones included)
count() { doveadm -c "$1/dovecot.conf" -f flow mailbox status -u "$2" messages "$3" 2>&1 | sed 's/.*messages=//'; }
# has DIR USER FOLDER ID - how many messages in FOLDER have Message-ID ID
has() { doveadm -c "$1/dovecot.conf" -f flow search -u "$2" mailbox "$3" header Message-ID "$4" 2>/dev/null | grep -c .; }
# flags DIR USER FOLDER ID - the IMAP flags of that message
flags() { dovecot_flags "$@" | sed -n 's/^flags=//p'; }

# --- servers -------------------------------------------------------------------
start_broker "$TMP/broker"
ok $? "kafka-dev-broker starts" || { finish; exit 1; }
gen_certs "$TMP/certs" >/dev/null 2>&1
A=$TMP/dovecot-a AP=$(freeport) APS=$(freeport)
start_dovecot "$A" "$AP" "$APS" "$TMP/certs"
ok $? "Dovecot A starts (MOVE)" || { finish; exit 1; }
APID=$DOVECOT_PID
B=$TMP/dovecot-b BP=$(freeport) BPS=$(freeport)
DC_NO_MOVE=1 start_dovecot "$B" "$BP" "$BPS" "$TMP/certs"
ok $? "Dovecot B starts (DC_NO_MOVE=1: no MOVE, UIDPLUS)" || { finish; exit 1; }
BPID=$DOVECOT_PID
C=$TMP/dovecot-c CP=$(freeport) CPS=$(freeport)
DC_NO_UIDPLUS=1 start_dovecot "$C" "$CP" "$CPS" "$TMP/certs"
ok $? "Dovecot C starts (DC_NO_UIDPLUS=1: neither MOVE nor UIDPLUS)" || { finish; exit 1; }
CPID=$DOVECOT_PID

# the mail before any round
put "$A" $S1 INBOX '<e-in@t.test>'
put "$A" $S1 Junk '<e-junk@t.test>'
put "$A" $S1 INBOX '<other-in@t.test>'       # never tracked
put "$A" $S1 Junk '<other-junk@t.test>'      # never tracked
put "$A" $S1 Junk '<other-del@t.test>' T     # \Deleted by the user's client
put "$A" $S2 INBOX '<l-in@t.test>'
put "$A" $S2 Junk '<l-junk@t.test>'
put "$A" $S2 INBOX '<l-moved@t.test>'
put "$B" $S1 Junk '<n-junk@t.test>'
put "$B" $S1 Junk '<n-other@t.test>'
put "$B" $S1 Junk '<n-del@t.test>' T
put "$C" $S1 Junk '<p-junk@t.test>'
eq "before: A seed1 INBOX 2, Junk 3; A seed2 INBOX 2, Junk 1; B seed1 INBOX 0, Junk 3" \
  "$(count "$A" $S1 INBOX) $(count "$A" $S1 Junk) $(count "$A" $S2 INBOX) $(count "$A" $S2 Junk) $(count "$B" $S1 INBOX) $(count "$B" $S1 Junk)" \
  "2 3 2 1 0 3"
check "the other \\Deleted message in Junk carries \\Deleted" -- \
  bash -c "[[ '$(flags "$A" $S1 Junk '<other-del@t.test>')' == *Deleted* ]]"

printf 'password\n' >"$TMP/seed.pw"
chmod 600 "$TMP/seed.pw"
imap() { printf '{"loop": "imap", "host": "localhost", "port": %s, "tls": "starttls", "user": "%s", "password_file": "%s", "ca_file": "%s", "timeout_ms": 5000%s}' \
  "$1" "$2" "$TMP/seed.pw" "$TMP/certs/ca.pem" "${3:+, \"engage\": $3}"; }
cat >"$TMP/loops.json" <<JSON
{"engage.test": $(imap "$AP" $S1 '{"rescue": true, "mark_read": true, "flag": true}'),
 "look.test": $(imap "$AP" $S2),
 "nomove.test": $(imap "$BP" $S1 '{"rescue": true}'),
 "noplus.test": $(imap "$CP" $S1 '{"rescue": true}')}
JSON
HP=$(freeport)
H=http://127.0.0.1:$HP
start_health health "$HP" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json"
ok $? "health-service starts (three imap loops, two with engage)" || { finish; exit 1; }
LOG=$TMP/health/out.log

# --- the copies --------------------------------------------------------------------
EXTRA=()
for i in $(seq 200); do EXTRA+=("<never-$i@t.test>=x$i@look.test"); done
produce_sent '<e-in@t.test>=a1@engage.test' '<e-junk@t.test>=a2@engage.test' \
  '<l-in@t.test>=b1@look.test' '<l-junk@t.test>=b2@look.test' '<l-moved@t.test>=b3@look.test' \
  '<n-junk@t.test>=c1@nomove.test' '<p-junk@t.test>=d1@noplus.test' "${EXTRA[@]}"
ok $? "207 email.sent events produced"

# copy ID EXPR - a python expression on the copy's /mail_stats answer j
copy() { jget "$(curl -s "$H/mail_stats?mail_id=$1")" "$2" 2>/dev/null; }
# is ID "delivered spam opened read rescued"
stats() { copy "$1" '" ".join(str(j.get(k)) for k in ("delivered","spam","opened","read","rescued"))'; }
is() { [ "$(stats "$1")" = "$2" ]; }
wait_for 60 is '<e-junk@t.test>' "0 1 1 1 1"
ok $? "engage.test: the Junk copy is spam, opened, read and rescued in /mail_stats ($(stats '<e-junk@t.test>'))"
wait_for 20 is '<e-in@t.test>' "1 0 1 1 0"
ok $? "engage.test: the INBOX copy is delivered, opened and read after mark_read + flag ($(stats '<e-in@t.test>'))"
wait_for 20 is '<n-junk@t.test>' "0 1 0 0 1"
ok $? "nomove.test: the Junk copy is spam and rescued ($(stats '<n-junk@t.test>'))"
wait_for 20 is '<p-junk@t.test>' "0 1 0 0 0"
ok $? "noplus.test (neither MOVE nor UIDPLUS): the Junk copy is spam, not rescued ($(stats '<p-junk@t.test>'))"
sleep 3 # more rounds: the copy stays where it is, the warning is not repeated
eq "noplus.test: the copy stays in C's Junk, nothing in its INBOX" "$(count "$C" $S1 Junk) $(count "$C" $S1 INBOX)" "1 0"
eq "noplus.test: one warning, naming the missing capabilities" \
  "$(grep -c 'imap loop cannot rescue domain=noplus.test .*neither MOVE' "$LOG")" 1
wait_for 20 is '<l-in@t.test>' "1 0 0 0 0"
ok $? "look.test: the INBOX copy is delivered, not opened ($(stats '<l-in@t.test>'))"
wait_for 20 is '<l-junk@t.test>' "0 1 0 0 0"
ok $? "look.test: the Junk copy is spam, not rescued ($(stats '<l-junk@t.test>'))"
wait_for 20 is '<l-moved@t.test>' "1 0 0 0 0"
ok $? "look.test: the copy still in INBOX is delivered"

# --- the mailboxes after the actions -------------------------------------------------
eq "A seed1 after: INBOX 3 (the rescued copy joined), Junk 2 (only the copy left)" \
  "$(count "$A" $S1 INBOX) $(count "$A" $S1 Junk)" "3 2"
eq "the rescued copy: in INBOX once, no longer in Junk" \
  "$(has "$A" $S1 INBOX '<e-junk@t.test>') $(has "$A" $S1 Junk '<e-junk@t.test>')" "1 0"
eq "Junk's other mail stays: the untracked message and the \\Deleted one" \
  "$(has "$A" $S1 Junk '<other-junk@t.test>') $(has "$A" $S1 Junk '<other-del@t.test>')" "1 1"
f=$(flags "$A" $S1 INBOX '<e-junk@t.test>')
check "the rescued copy carries \\Seen and \\Flagged into INBOX ($f)" -- \
  bash -c "[[ '$f' == *Seen* && '$f' == *Flagged* ]]"
f=$(flags "$A" $S1 INBOX '<e-in@t.test>')
check "mark_read + flag: the INBOX copy has \\Seen and \\Flagged ($f)" -- \
  bash -c "[[ '$f' == *Seen* && '$f' == *Flagged* ]]"
f=$(flags "$A" $S1 INBOX '<other-in@t.test>')
check "an untracked INBOX message keeps its flags (no \\Seen, no \\Flagged: '$f')" -- \
  bash -c "[[ '$f' != *Seen* && '$f' != *Flagged* ]]"
f=$(flags "$A" $S1 Junk '<other-junk@t.test>')
check "an untracked Junk message keeps its flags ('$f')" -- bash -c "[[ '$f' != *Seen* && '$f' != *Flagged* ]]"
check "the \\Deleted message in Junk is still marked \\Deleted" -- \
  bash -c "[[ '$(flags "$A" $S1 Junk '<other-del@t.test>')' == *Deleted* ]]"
check "log: one rescue batch for engage.test via UID MOVE" -- \
  grep -q 'imap loop engaged domain=engage.test mailbox="Junk" action=rescue count=1 via=move to="INBOX"' "$LOG"
check "log: mark_read and flag batches for engage.test" -- bash -c \
  "grep -q 'imap loop engaged domain=engage.test mailbox=\"INBOX\" action=mark_read count=1' '$LOG' &&
   grep -q 'imap loop engaged domain=engage.test mailbox=\"INBOX\" action=flag count=1' '$LOG' &&
   grep -q 'imap loop engaged domain=engage.test mailbox=\"Junk\" action=mark_read count=1' '$LOG'"
check "log: the rescued copy's Message-ID at debug level" -- \
  grep -q 'imap loop engaged domain=engage.test mailbox="Junk" action=rescue uid=[0-9]* message_id=<e-junk@t.test>' "$LOG"

eq "read-only (look.test): A seed2 INBOX 2, Junk 1 as before" \
  "$(count "$A" $S2 INBOX) $(count "$A" $S2 Junk)" "2 1"
f=$(flags "$A" $S2 INBOX '<l-in@t.test>')
check "read-only: the INBOX copy still has no \\Seen ('$f')" -- bash -c "[[ '$f' != *Seen* ]]"
check "read-only: opened with EXAMINE (the copy is still \\Recent: a SELECT would have claimed it)" -- \
  bash -c "[[ '$f' == *Recent* ]]"
check "read-only: no action logged for look.test" -- bash -c "! grep -q 'engaged domain=look.test' '$LOG'"

eq "without MOVE (B): INBOX 1 (the rescued copy), Junk 2" "$(count "$B" $S1 INBOX) $(count "$B" $S1 Junk)" "1 2"
eq "without MOVE: the copy is in INBOX once and gone from Junk" \
  "$(has "$B" $S1 INBOX '<n-junk@t.test>') $(has "$B" $S1 Junk '<n-junk@t.test>')" "1 0"
eq "without MOVE: Junk's other mail stays, the \\Deleted one too (UID EXPUNGE, never EXPUNGE)" \
  "$(has "$B" $S1 Junk '<n-other@t.test>') $(has "$B" $S1 Junk '<n-del@t.test>')" "1 1"
f=$(flags "$B" $S1 INBOX '<n-junk@t.test>')
check "without MOVE: the copy in INBOX is not \\Deleted ('$f')" -- bash -c "[[ '$f' != *Deleted* ]]"
check "log: nomove.test rescued via COPY + UID EXPUNGE" -- \
  grep -q 'imap loop engaged domain=nomove.test mailbox="Junk" action=rescue count=1 via=copy+expunge' "$LOG"

# --- a message delivered before its email.sent event -------------------------------------
# rounds DOMAIN K - wait until K more rounds of DOMAIN were logged
rounds() { local want=$(($(grep -c "imap loop round domain=$1 " "$LOG") + $2))
  wait_for 30 bash -c "[ \$(grep -c 'imap loop round domain=$1 ' '$LOG') -ge $want ]"; }
rounds engage.test 1
printf 'From: s@example.test\r\nTo: %s\r\nSubject: late\r\nMessage-ID: <e-late@t.test>\r\n\r\nlate\r\n' $S1 |
  lda_deliver "$A" $S1 INBOX
ok $? "dovecot-lda delivers <e-late@t.test> into A seed1's INBOX"
rounds engage.test 2
ok $? "two more engage.test rounds read the new mail (the copy is not tracked yet)"
produce_sent '<e-late@t.test>=a3@engage.test'
wait_for 30 is '<e-late@t.test>' "1 0 1 1 0"
ok $? "the copy delivered before its event is found once tracked: delivered, marked read ($(stats '<e-late@t.test>'))"

# --- the user moves a copy from INBOX to Junk ----------------------------------------------
doveadm -c "$A/dovecot.conf" move -u $S2 Junk mailbox INBOX header Message-ID '<l-moved@t.test>'
ok $? "doveadm moves <l-moved@t.test> from INBOX to Junk (as the user would)"
wait_for 30 is '<l-moved@t.test>' "0 1 0 0 0"
ok $? "the moved copy becomes spam ($(stats '<l-moved@t.test>'))"

# --- a reconnect keeps the folder indexes ------------------------------------------------
stop_dovecot "$APID"
start_dovecot "$A" "$AP" "$APS" "$TMP/certs"
ok $? "Dovecot A restarted on the same Maildirs (the loops' connections dropped)"
APID=$DOVECOT_PID
wait_for 30 bash -c "[ \$(grep -c 'imap loop connected domain=look.test ' '$LOG') -ge 2 ]"
ok $? "look.test reconnected"
rounds look.test 2
ok $? "two look.test rounds after the reconnect"
eq "the reconnect did not read the folders again (one 'index built' per folder of look.test)" \
  "$(grep -c 'imap loop index built domain=look.test ' "$LOG")" 2
wait_for 20 is '<l-moved@t.test>' "0 1 0 0 0"
ok $? "after the reconnect the answers are unchanged (the moved copy is spam)"

# --- the cost of a round ------------------------------------------------------------------
rounds look.test 1
line=$(grep 'imap loop round domain=look.test copies=203 ' "$LOG" | tail -1)
n=$(sed -n 's/.* commands=\([0-9]*\).*/\1/p' <<<"$line")
check "a look.test round over 203 copies: at most 8 IMAP commands (NOOP, EXAMINE and FETCHes; got ${n:-none})" -- \
  test -n "$n" -a "${n:-99}" -le 8
check "the round's counts in the same line: inbox 1, spam 2, not_found 200" -- \
  grep -q 'inbox=1 spam=2 not_found=200 ' <<<"$line"

# --- stop --------------------------------------------------------------------------------
stop_named health
eq "health-service exits 0 on SIGTERM" "$STOP_RC" 0
check "no sanitizer report in health-service's log" -- sanitizer_clean health
stop_dovecot "$APID"
stop_dovecot "$BPID"
stop_dovecot "$CPID"
finish
