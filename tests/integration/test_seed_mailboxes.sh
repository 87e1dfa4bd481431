#!/bin/bash
# test_seed_mailboxes.sh - seed mailboxes per recipient (DESIGN 9.4), end
# to end against real servers (TAP): warmup-service broadcasts through
# Postfix smtp-sink to 120 seed users of a Dovecot with 122 passwd-file
# users and to recipients no loop looks at; the real messages the sink
# received are delivered by dovecot-lda into each recipient's own mailbox
# (every fourth into Junk); health-service (SEED_MAILBOXES_FILE, no domain
# loop: FEEDBACK_LOOPS_FILE {"default": null}) checks each copy in its own
# recipient's mailbox over STARTTLS with a pool of 4 workers and at most 30
# open IMAP connections.
#
# Proves: /mail_stats counts each copy where it landed (90 delivered, 30
# spam), the 8 copies to recipients with neither a seed mailbox nor a loop
# as unchecked (never pending), the 15 spam copies of mailboxes with
# engage.rescue as rescued, opened/read from mark_read/flag; rescue moved
# exactly the copy (the other mail in Junk, also a message someone else
# flagged \Deleted, stays; doveadm counts before and after) and set \Seen;
# a mailbox without engage is only read (EXAMINE: no flag changes);
# GET /seed_mailboxes lists every mailbox with its state: a wrong password,
# a dead port, a silent server (timeout) and an entry without host each
# show their own error, the other 120 are ok with checked 1, rescued as
# moved; the silent server never holds the rounds of the others (their
# last_round_at keeps advancing every CHECK_INTERVAL); open connections
# stay within IMAP_MAX_CONNECTIONS (metric sampled during rounds); SIGHUP
# reloads the file: the fixed entry becomes ok and its copy is checked,
# the removed mailbox leaves the list, the unchanged ones are kept (log
# "kept="), a broken file on SIGHUP keeps the set; exit 0 on SIGTERM with
# no sanitizer report.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
. "$(dirname "$0")/dovecot.sh"
for c in dovecot doveadm smtp-sink openssl; do
  command -v "$c" >/dev/null || { echo "Bail out! $c is not installed"; exit 1; }
done
CI=2 # CHECK_INTERVAL
NSEED=120

seed() { printf 'seed%03d@gmail.test' "$1"; }
# dump_for ADDRESS - the sink's file of the copy to ADDRESS
dump_for() { grep -l "^X-Rcpt-Args: <$1>" "$TMP"/sink/msg.* 2>/dev/null | head -1; }
message() { awk 'body || !/^X-[A-Za-z-]+: / {body = 1; print}' "$1"; }
# deliver ADDRESS USER FOLDER - the real copy to ADDRESS into USER's FOLDER by dovecot-lda
deliver() { local f; f=$(dump_for "$1") && [ -n "$f" ] && message "$f" | lda_deliver "$DC" "$2" "$3"; }
mid_of() { grep -m1 -i '^Message-ID: ' "$(dump_for "$1")" | cut -d' ' -f2 | tr -d '\r'; }
# count USER FOLDER - messages doveadm sees there
count() { doveadm -c "$DC/dovecot.conf" -f flow search -u "$1" mailbox "$2" all 2>/dev/null | wc -l; }
stats() { jget "$(curl -s "$H/mail_stats?email_id=$EID")" "$1"; }
copy_stats() { jget "$(curl -s -G --data-urlencode "mail_id=$1" "$H/mail_stats")" "$2"; }
# stats_are EXPR WANT - for wait_for
stats_are() { [ "$(stats "$1" 2>/dev/null)" = "$2" ]; }
# seedj ADDRESS EXPR - a python expression on ADDRESS's /seed_mailboxes entry m
seedj() { curl -s "$H/seed_mailboxes" | $PY -c 'import json,sys; m=next((x for x in json.load(sys.stdin) if x["address"]==sys.argv[1]), None); print(eval(sys.argv[2]))' "$1" "$2"; }

# bad settings stop start-up with one line naming the variable
out=$(IMAP_MAX_CONNECTIONS=201 PORT=0 DB_PATH=$TMP/x.db "$HEALTH_BIN" 2>&1 </dev/null); rc=$?
check "IMAP_MAX_CONNECTIONS over 200 is refused (libetpan's select)" -- bash -c '[ "$1" != 0 ] && grep -q "IMAP_MAX_CONNECTIONS.*200" <<<"$2"' _ "$rc" "$out"
out=$(IMAP_MAX_CONNECTIONS=2 CHECK_WORKERS=4 PORT=0 DB_PATH=$TMP/x.db "$HEALTH_BIN" 2>&1 </dev/null); rc=$?
check "IMAP_MAX_CONNECTIONS below CHECK_WORKERS is refused" -- bash -c '[ "$1" != 0 ] && grep -q "IMAP_MAX_CONNECTIONS: must be at least CHECK_WORKERS" <<<"$2"' _ "$rc" "$out"
echo '[{"address":' >"$TMP/bad-seeds.json"
out=$(SEED_MAILBOXES_FILE=$TMP/bad-seeds.json PORT=0 DB_PATH=$TMP/x.db "$HEALTH_BIN" 2>&1 </dev/null); rc=$?
check "a SEED_MAILBOXES_FILE that is not JSON stops start-up, naming it" -- bash -c '[ "$1" != 0 ] && grep -q "config: SEED_MAILBOXES_FILE" <<<"$2"' _ "$rc" "$out"
gen_certs "$TMP/certs" >/dev/null 2>&1
start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
DC=$TMP/dovecot DP=$(freeport) DPS=$(freeport)
DC_NUSERS=$((NSEED + 2)) DC_USER_FMT='seed%03d@gmail.test' start_dovecot "$DC" "$DP" "$DPS" "$TMP/certs"
ok $? "Dovecot starts with $((NSEED + 2)) passwd-file users"
SP=$(freeport); start_smtp_sink "$SP" "$TMP/sink" --dump; ok $? "smtp-sink starts"
printf 'password\n' >"$TMP/seed.pw"; printf 'Wr0ng-Secret-42\n' >"$TMP/wrong.pw"; chmod 600 "$TMP"/*.pw
DEAD=$(freeport) # nothing listens there
SILENT=$(freeport)
$PY -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); held = []
while True:
    c, _ = s.accept(); held.append(c)   # accepts, never answers
' "$SILENT" >/dev/null 2>&1 &
track $!
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SILENT"; ok $? "a silent IMAP server (accepts, never greets)"

# imap USER [PWFILE] [PORT] [TIMEOUT] - an "imap" settings object
imap() { printf '{"host":"localhost","port":%s,"tls":"starttls","user":"%s","password_file":"%s","ca_file":"%s","timeout_ms":%s}' \
  "${3:-$DP}" "$1" "${2:-$TMP/seed.pw}" "$TMP/certs/ca.pem" "${4:-5000}"; }
# seeds_file SKIP FIXED - the SEED_MAILBOXES_FILE (SKIP: a seed number left out; FIXED=1: broken@ fixed)
seeds_file() { local skip=$1 fixed=$2 i e
  {
    echo '['
    for ((i = 1; i <= NSEED; i++)); do
      [ "$i" = "$skip" ] && continue
      if ((i <= 10)); then e=',"engage":{"rescue":true,"mark_read":true,"flag":true}'
      elif ((i <= 60)); then e=',"engage":{"rescue":true,"mark_read":true}'
      else e=''; fi
      printf '{"address":"%s","imap":%s%s},\n' "$(seed "$i")" "$(imap "$(seed "$i")")" "$e"
    done
    printf '{"address":"%s","imap":%s},\n' "$(seed 121)" "$(imap "$(seed 121)" "$TMP/wrong.pw")"
    printf '{"address":"dead@gmail.test","imap":%s},\n' "$(imap dead@gmail.test "" "$DEAD")"
    printf '{"address":"silent@gmail.test","imap":%s},\n' "$(imap silent@gmail.test "" "$SILENT" 2000)"
    if [ "$fixed" = 1 ]; then
      printf '{"address":"Broken@Gmail.test","imap":%s}\n' "$(imap "$(seed 122)")"
    else
      printf '{"address":"broken@gmail.test","imap":{"port":%s,"user":"x","password_file":"%s"}}\n' "$DP" "$TMP/seed.pw"
    fi
    echo ']'
  } >"$TMP/seeds.json"
}
seeds_file 0 0
echo '{"default": null}' >"$TMP/loops.json"
HP=$(freeport); WP=$(freeport); H=http://127.0.0.1:$HP W=http://127.0.0.1:$WP
start_health health "$HP" CHECK_INTERVAL=$CI SEED_MAILBOXES_FILE="$TMP/seeds.json" \
  FEEDBACK_LOOPS_FILE="$TMP/loops.json" CHECK_WORKERS=4 IMAP_MAX_CONNECTIONS=30 LOG_LEVEL=info
ok $? "health-service starts with a bad seed entry among $((NSEED + 4)) (SEED_MAILBOXES_FILE, default loop null)"
check "the bad entry is logged by address and field" -- grep -q "SEED_MAILBOXES_FILE: broken@gmail.test: .*host" "$TMP/health/out.log"
start_warmup warmup "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP SMTP_TLS=none \
  MESSAGE_ID_DOMAIN=w.test LOG_LEVEL=info
ok $? "warmup-service starts"

$PY - "$NSEED" <<'PY' >"$TMP/users.csv"
import sys
n = int(sys.argv[1])
print("name,email_id")
for i in range(1, n + 2): print(f"S{i},seed{i:03d}@gmail.test")
for a in ("dead", "silent", "broken"): print(f"{a},{a}@gmail.test")
for i in range(1, 6): print(f"N{i},nobody{i}@gmail.test")       # gmail, no seed mailbox
for i in range(1, 4): print(f"O{i},o{i}@other.test")             # no loop at all
PY
r=$(curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/users.csv" "$W/users/import")
eq "132 users imported" "$(jget "$r" 'j["imported"]')" 132
r=$(http POST "$W/send" '{"from":"news@acme.test","subject":"Seeds","body":"Hello {{name}}"}')
eq "POST /send -> 202" "${r%% *}" 202
EID=$(jget "${r#* }" 'j["email_id"]')
wait_for 60 bash -c "[ \$(ls $TMP/sink/msg.* 2>/dev/null | wc -l) -ge 132 ]"
ok $? "132 copies sent to smtp-sink"

# the 4th, 8th ... seed's copy lands in Junk; the others in INBOX. seed004
# also holds other mail in Junk: a message and one flagged \Deleted by
# someone else (an EXPUNGE would remove it)
printf 'From: a@b.test\r\nTo: seed004@gmail.test\r\nSubject: other\r\nMessage-ID: <other-junk@b.test>\r\n\r\nx\r\n' |
  put_message "$DC" "$(seed 4)" Junk 0 >/dev/null
printf 'From: a@b.test\r\nTo: seed004@gmail.test\r\nSubject: trashed\r\nMessage-ID: <trashed-junk@b.test>\r\n\r\nx\r\n' |
  put_message "$DC" "$(seed 4)" Junk 0 T >/dev/null
eq "seed004's Junk before the copy: other mail and a \\Deleted message" "$(count "$(seed 4)" Junk)" 2
bad=0
for ((i = 1; i <= NSEED + 1; i++)); do
  f=INBOX; ((i % 4 == 0)) && f=Junk
  deliver "$(seed "$i")" "$(seed "$i")" "$f" || bad=$((bad + 1))
done
eq "121 real copies delivered by dovecot-lda (every 4th into Junk)" "$bad" 0
M4=$(mid_of "$(seed 4)") M64=$(mid_of "$(seed 64)")

# connections stay bounded while the rounds run
maxconn=0
for ((k = 0; k < 40; k++)); do
  v=$(curl -s "$H/metrics" | awk '/^health_imap_connections /{print $2}')
  v=${v%.*}; [ -n "$v" ] && ((v > maxconn)) && maxconn=$v
  [ "$(stats 'j["delivered"] + j["spam"]')" = 120 ] && break
  sleep 0.5
done
wait_for 60 stats_are '"%d %d" % (j["delivered"] + j["spam"], j["rescued"])' "120 15"
if ! ok $? "every seed copy checked in its own mailbox, and rescued where configured"; then
  for a in "$(seed 121)" dead@gmail.test silent@gmail.test broken@gmail.test; do
    echo "# $a: $(copy_stats "$(mid_of "$a")" '"delivered %s spam %s checked_at %s" % (j["delivered"], j["spam"], j.get("checked_at"))')"
    grep -i "$a" "$TMP/health/out.log" | head -3 | sed 's/^/#   /'
  done
fi
echo "# open IMAP connections at most $maxconn (IMAP_MAX_CONNECTIONS=30)"
check "open connections within IMAP_MAX_CONNECTIONS (sampled max $maxconn)" -- test "$maxconn" -le 30
eq "/mail_stats: tracked delivered spam rescued unchecked pending" \
  "$(stats '"%d %d %d %d %d %d" % (j["tracked"], j["delivered"], j["spam"], j["rescued"], j["unchecked"], j["pending"])')" \
  "132 90 30 15 8 4"
eq "/mail_stats: opened (mark_read: seeds 1-60) and read (flag: seeds 1-10)" \
  "$(stats '"%d %d" % (j["opened"], j["read"])')" "60 10"
c4=$(copy_stats "$M4" '"%s %s %s" % (j["spam"], j["rescued"], j["delivered"])')
eq "the rescued copy of seed004: spam 1, rescued 1, delivered 0 (where it landed)" "$c4" "1 1 0"
eq "seed004's Junk after the rescue: the other mail and the \\Deleted message stay" "$(count "$(seed 4)" Junk)" 2
check "seed004's Junk still holds the \\Deleted message" -- bash -c "doveadm -c $DC/dovecot.conf -f flow fetch -u $(seed 4) flags mailbox Junk header Message-ID '<trashed-junk@b.test>' | grep -q Deleted"
eq "seed004's INBOX: the rescued copy" "$(count "$(seed 4)" INBOX)" 1
f4=$(dovecot_flags "$DC" "$(seed 4)" INBOX "$M4"); echo "# seed004 INBOX: $f4"
check "the rescued copy is \\Seen and \\Flagged in the inbox" -- grep -q 'Seen.*Flagged\|Flagged.*Seen' <<<"$f4"
f64=$(dovecot_flags "$DC" "$(seed 64)" Junk "$M64"); echo "# seed064 Junk: $f64"
eq "seed064 (no engage): its copy stays in Junk" "$(count "$(seed 64)" Junk)" 1
check "seed064's copy unseen (read-only checks)" -- bash -c '! grep -q Seen <<<"$1"' _ "$f64"
eq "seed064's copy: spam, not rescued" "$(copy_stats "$M64" '"%s %s" % (j["spam"], j["rescued"])')" "1 0"

dom=$(curl -s "$H/domains")
eq "/domains: other.test has no loop, its 3 copies unchecked, none pending" \
  "$(jget "$dom" '[(d["loop"], d["unchecked"], d["tracked"]) for d in j if d["domain"] == "other.test"]')" '[[null, 3, 3]]'
eq "/domains: gmail.test (no loop either): 5 unchecked, 30 spam, 15 rescued" \
  "$(jget "$dom" '[(d["loop"], d["unchecked"], d["spam"], d["rescued"]) for d in j if d["domain"] == "gmail.test"]')" '[[null, 5, 30, 15]]'

# /seed_mailboxes: the failing mailboxes' first rounds end later than the
# others' (Dovecot delays a failed LOGIN by 2 s, the silent server times out
# after 2 s), which a quick run reaches first
failing=$(printf '%s ' "$(seed 121)" dead@gmail.test silent@gmail.test broken@gmail.test)
wait_for 20 bash -c "curl -s $H/seed_mailboxes | $PY -c 'import json,sys; e = {x[\"address\"] for x in json.load(sys.stdin) if x[\"state\"] == \"error\"}; sys.exit(not set(sys.argv[1].split()) <= e)' '$failing'"
ok $? "the four failing mailboxes have had their first round"
sm=$(curl -s "$H/seed_mailboxes")
eq "GET /seed_mailboxes lists all $((NSEED + 4)) mailboxes" "$(jget "$sm" 'len(j)')" $((NSEED + 4))
eq "120 ok with checked 1 each" "$(jget "$sm" 'sum(1 for m in j if m["state"] == "ok" and m["checked"] == 1)')" 120
eq "rescued summed over the mailboxes" "$(jget "$sm" 'sum(m["rescued"] for m in j)')" 15
eq "seed121 (wrong password): error naming LOGIN" "$(seedj "$(seed 121)" '"%s %s" % (m["state"], "LOGIN" in (m["last_error"] or ""))')" "error True"
check "no password in /seed_mailboxes" -- bash -c "! grep -q 'Wr0ng-Secret-42' <<<'$sm'"
eq "dead@ (nothing listening): error, connection refused" "$(seedj dead@gmail.test '"%s %s" % (m["state"], "refused" in (m["last_error"] or ""))')" "error True"
eq "silent@ (no greeting): error, timed out" "$(seedj silent@gmail.test '"%s %s" % (m["state"], "timed out" in (m["last_error"] or "") or "timeout" in (m["last_error"] or ""))')" "error True"
eq "broken@ (no host): error naming the field, never checked" "$(seedj broken@gmail.test '"%s %s %s" % (m["state"], "host" in (m["last_error"] or ""), m["last_round_at"])')" "error True None"
t1=$(seedj "$(seed 1)" 'm["last_round_at"]'); sleep $((3 * CI)); t2=$(seedj "$(seed 1)" 'm["last_round_at"]')
check "the silent server holds no other mailbox: seed001's rounds go on ($t1 -> $t2)" -- test "$t1" != "$t2"
check "rounds are logged" -- grep -qE 'check round=[0-9]+ tasks=[0-9]+ copies=[0-9]+ unchecked=[0-9]+ failed=[0-9]+ skipped=[0-9]+ duration_ms=' "$TMP/health/out.log"
check "health_imap_commands_total counts" -- bash -c "curl -s $H/metrics | grep -qE '^health_imap_commands_total [1-9]'"
eq "health_seed_mailboxes by state" "$(curl -s "$H/metrics" | grep '^health_seed_mailboxes{' | sort | tr '\n' ' ')" \
  'health_seed_mailboxes{state="error"} 4 health_seed_mailboxes{state="ok"} 120 '
check "no password in the log" -- bash -c "! grep -q 'Wr0ng-Secret-42' $TMP/health/out.log"

# SIGHUP: broken@ fixed (now in seed122's mailbox), seed120 removed
deliver broken@gmail.test "$(seed 122)" INBOX; ok $? "broken@'s copy delivered into seed122's mailbox"
seeds_file 120 1
kill -HUP "$health_PID"
is_ok() { [ "$(seedj "$1" 'm and m["state"] == "ok" and m["checked"] == 1')" = True ]; }
wait_for 20 is_ok broken@gmail.test
ok $? "SIGHUP: the fixed entry is ok without a restart"
check "the reload kept the unchanged mailboxes" -- grep -qE 'seed mailboxes loaded .* mailboxes=123 bad=0 kept=122' "$TMP/health/out.log"
eq "seed120 left the list" "$(seedj "$(seed 120)" 'm')" None
wait_for 20 stats_are 'j["delivered"]' 91
ok $? "broken@'s copy checked after the reload (delivered 91)"
echo '[{"address": ' >"$TMP/seeds.json"
kill -HUP "$health_PID"
wait_for 10 grep -q 'SIGHUP: SEED_MAILBOXES_FILE.*stay as they were' "$TMP/health/out.log"
ok $? "a broken file on SIGHUP is refused, the set stays"
eq "still 123 mailboxes" "$(jget "$(curl -s "$H/seed_mailboxes")" 'len(j)')" 123
check "health-service still serves" -- curl -fsS "$H/healthz"

stop_named warmup; eq "warmup: SIGTERM exit 0" "$STOP_RC" 0
stop_named health; eq "health: SIGTERM exit 0" "$STOP_RC" 0
check "no sanitizer report" -- bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' $TMP/warmup/out.log $TMP/health/out.log"
stop_dovecot
finish
