#!/bin/bash
# test_imap_oauth2.sh - the IMAP loop's authentication from files (health-
# service/loops/loop_imap_conn.c, loop_imap_settings.c; DESIGN 9.4) end to
# end against real servers (TAP): kafka-dev-broker, the health service with
# imap domain loops in FEEDBACK_LOOPS_FILE, copies as email.sent events
# produced with kcat and delivered with dovecot-lda; Dovecot A with passdb
# oauth2 (DC_OAUTH2_URL) asking oauth2_introspect.py (token introspection
# on loopback, tokens from a file this test rewrites), Dovecot B without it.
#   oauth.test -> seed1 on A, SASL XOAUTH2 with oauth2_token_file
#   pw.test    -> seed1 on B, LOGIN with password_file
#   nox.test   -> seed2 on B, oauth2_token_file (B offers no XOAUTH2)
#
# Proves: XOAUTH2 with the token file finds the copies in INBOX and Junk
# (log auth=xoauth2); the token expires (the endpoint rejects it) and the
# session drops (doveadm kick) -> the rounds fail with "AUTHENTICATE
# XOAUTH2 as USER failed" in /domains, the new copy stays pending; the
# token file rewritten with a fresh token while the backoff has several
# seconds left -> the next round (within about one CHECK_INTERVAL) logs in
# and finds the copy, no restart; the password changed in Dovecot's
# passwd-file and in password_file, the session dropped -> the loop logs
# in with the new password, no restart; a server without AUTH=XOAUTH2 ->
# a clear error; no token and no password in any log or answer; strict
# settings (exactly one secret, unreadable or malformed token file named
# without its contents, "engage" keys and types); SIGTERM exits 0 with no
# sanitizer report.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
. "$(dirname "$0")/dovecot.sh"
IC=${IMAP_CHECK:-$BUILD_DIR/tests/imap_check}

for b in "$BROKER_BIN" "$HEALTH_BIN" "$IC"; do
  [ -x "$b" ] || { echo "Bail out! $b is missing (build first)"; exit 1; }
done
for c in dovecot doveadm kcat openssl; do
  command -v "$c" >/dev/null || { echo "Bail out! $c is not installed"; exit 1; }
done

S1=seed1@gmail.test
S2=seed2@gmail.test
TOK1=tokA-$RANDOM$RANDOM-first
TOK2=tokB-$RANDOM$RANDOM-fresh
PW2=Rotated-$RANDOM$RANDOM
CI=2 # CHECK_INTERVAL, seconds

# deliver DIR USER FOLDER ID - a message with Message-ID ID through dovecot-lda
deliver() {
  printf 'From: Sender <sender@example.test>\r\nTo: %s\r\nSubject: msg %s\r\nDate: %s\r\nMessage-ID: %s\r\n\r\nHello\r\n' \
    "$2" "$4" "$(date -R)" "$4" | lda_deliver "$1" "$2" "$3"
}

# --- servers -----------------------------------------------------------------------
start_broker "$TMP/broker"
ok $? "kafka-dev-broker starts" || { finish; exit 1; }
gen_certs "$TMP/certs" >/dev/null 2>&1
echo "$TOK1 $S1" >"$TMP/tokens"
$PY "$(dirname "$0")/oauth2_introspect.py" "$TMP/oauth.port" "$TMP/tokens" 2>"$TMP/oauth.log" &
OPID=$!
track $OPID
wait_for 10 test -s "$TMP/oauth.port"
ok $? "token introspection endpoint listens on 127.0.0.1:$(cat "$TMP/oauth.port" 2>/dev/null)"
A=$TMP/dovecot-a AP=$(freeport) APS=$(freeport)
DC_OAUTH2_URL="http://127.0.0.1:$(cat "$TMP/oauth.port")/introspect" start_dovecot "$A" "$AP" "$APS" "$TMP/certs"
ok $? "Dovecot A starts (passdb oauth2: XOAUTH2)" || { finish; exit 1; }
APID=$DOVECOT_PID
B=$TMP/dovecot-b BP=$(freeport) BPS=$(freeport)
start_dovecot "$B" "$BP" "$BPS" "$TMP/certs"
ok $? "Dovecot B starts (no XOAUTH2)" || { finish; exit 1; }
BPID=$DOVECOT_PID

deliver "$A" $S1 INBOX '<o-in@t.test>' && deliver "$A" $S1 Junk '<o-junk@t.test>' &&
  deliver "$B" $S1 INBOX '<p-in@t.test>' && deliver "$B" $S1 Junk '<p-junk@t.test>'
ok $? "dovecot-lda delivers two copies into each seed1's INBOX and Junk"

printf '%s\n' "$TOK1" >"$TMP/seed1.token"
printf '%s\n' "$TOK1" >"$TMP/seed2.token"
printf 'password\n' >"$TMP/seed1.pw"
chmod 600 "$TMP/seed1.token" "$TMP/seed2.token" "$TMP/seed1.pw"
imap() { printf '{"loop": "imap", "host": "localhost", "port": %s, "tls": "starttls", "user": "%s", "%s": "%s", "ca_file": "%s", "timeout_ms": 5000}' \
  "$1" "$2" "$3" "$4" "$TMP/certs/ca.pem"; }
cat >"$TMP/loops.json" <<JSON
{"oauth.test": $(imap "$AP" $S1 oauth2_token_file "$TMP/seed1.token"),
 "pw.test": $(imap "$BP" $S1 password_file "$TMP/seed1.pw"),
 "nox.test": $(imap "$BP" $S2 oauth2_token_file "$TMP/seed2.token")}
JSON
HP=$(freeport)
H=http://127.0.0.1:$HP
start_health health "$HP" CHECK_INTERVAL=$CI FEEDBACK_LOOPS_FILE="$TMP/loops.json"
ok $? "health-service starts (XOAUTH2, password_file and a server without XOAUTH2)" || { finish; exit 1; }
LOG=$TMP/health/out.log

# stats ID - "delivered spam pending" of the copy
stats() { jget "$(curl -s "$H/mail_stats?mail_id=$1")" '" ".join(str(j.get(k)) for k in ("delivered","spam","pending"))' 2>/dev/null; }
is() { [ "$(stats "$1")" = "$2" ]; }
# lasterr DOMAIN - the domain's last_error in /domains
lasterr() { curl -s "$H/domains" | $PY -c 'import json,sys; print(next((d["last_error"] for d in json.load(sys.stdin) if d["domain"] == sys.argv[1]), "absent"))' "$1" 2>/dev/null; }
has_err() { [[ "$(lasterr "$1")" == *"$2"* ]]; }
no_err() { [ "$(lasterr "$1")" = None ]; }
kick() { doveadm -c "$1/dovecot.conf" kick "$2" >/dev/null 2>&1; }

produce_sent '<o-in@t.test>=a1@oauth.test' '<o-junk@t.test>=a2@oauth.test' \
  '<p-in@t.test>=b1@pw.test' '<p-junk@t.test>=b2@pw.test' '<x-in@t.test>=c1@nox.test'
ok $? "5 email.sent events produced"

# --- XOAUTH2 ------------------------------------------------------------------------
wait_for 30 is '<o-in@t.test>' "1 0 0"
ok $? "XOAUTH2: the INBOX copy is delivered ($(stats '<o-in@t.test>'))"
wait_for 10 is '<o-junk@t.test>' "0 1 0"
ok $? "XOAUTH2: the Junk copy is spam ($(stats '<o-junk@t.test>'))"
check "log: oauth.test connected with auth=xoauth2" -- \
  grep -q 'imap loop connected domain=oauth.test .* auth=xoauth2 ' "$LOG"
check "Dovecot A logged the XOAUTH2 login of seed1" -- \
  grep -q "imap-login: Info: Login: user=<$S1>, method=XOAUTH2" "$A/dovecot.log"
check "the endpoint was asked (POST, the token's length only)" -- \
  grep -q "introspect POST token_len=${#TOK1} active=true" "$TMP/oauth.log"
wait_for 10 is '<p-in@t.test>' "1 0 0"
ok $? "password_file: the INBOX copy is delivered ($(stats '<p-in@t.test>'))"
wait_for 10 has_err nox.test 'does not offer AUTH=XOAUTH2'
ok $? "a server without XOAUTH2: /domains says so ($(lasterr nox.test))"

# --- the token expires --------------------------------------------------------------
: >"$TMP/tokens" # the endpoint now rejects every token
deliver "$A" $S1 INBOX '<o-2@t.test>'
produce_sent '<o-2@t.test>=a3@oauth.test'
kick "$A" $S1
ok $? "token revoked at the endpoint, seed1's session on A kicked (doveadm kick)"
wait_for 30 has_err oauth.test "AUTHENTICATE XOAUTH2 as $S1 failed"
ok $? "the rounds fail with a clear error: $(lasterr oauth.test)"
check "the failure says the server refused (NO)" -- has_err oauth.test 'refused by the server'
# let the backoff grow until several seconds are left: 1, 2, 4, 8 s
wait_for 40 grep -q 'imap loop connect failed domain=oauth.test .*retry_in_ms=8000' "$LOG"
ok $? "the reconnect backoff reached 8 s"
eq "meanwhile the new copy stays pending" "$(stats '<o-2@t.test>')" "0 0 1"

# --- a fresh token, no restart --------------------------------------------------------
echo "$TOK2 $S1" >"$TMP/tokens"
printf '%s\n' "$TOK2" >"$TMP/seed1.token.new" && mv "$TMP/seed1.token.new" "$TMP/seed1.token"
t0=$(date +%s%N)
wait_for 20 is '<o-2@t.test>' "1 0 0"
ok $? "the token file rewritten (rename) -> the copy is found ($(stats '<o-2@t.test>'))"
ms=$((($(date +%s%N) - t0) / 1000000))
check "... within about one CHECK_INTERVAL ($CI s) + 2 s, not after the backoff (8 s): ${ms} ms" -- \
  test "$ms" -le $((CI * 1000 + 2000))
wait_for 10 no_err oauth.test
ok $? "/domains: oauth.test's last_error is null again"
check "the endpoint saw the fresh token (its length)" -- \
  grep -q "introspect POST token_len=${#TOK2} active=true" "$TMP/oauth.log"
check "the same health-service process throughout (no restart)" -- alive "$health_PID"

# --- the password rotates ---------------------------------------------------------------
sed -i "s/^$S1:{PLAIN}password:/$S1:{PLAIN}$PW2:/" "$B/users"
printf '%s\n' "$PW2" >"$TMP/seed1.pw"
deliver "$B" $S1 INBOX '<p-2@t.test>'
produce_sent '<p-2@t.test>=b3@pw.test'
n0=$(grep -c 'imap loop connected domain=pw.test ' "$LOG")
kick "$B" $S1
ok $? "seed1's password changed in B's passwd-file and in password_file, the session kicked"
wait_for 30 is '<p-2@t.test>' "1 0 0"
ok $? "password_file re-read at connect: the new copy is found ($(stats '<p-2@t.test>'))"
check "a new connection for pw.test" -- test "$(grep -c 'imap loop connected domain=pw.test ' "$LOG")" -gt "$n0"
check "Dovecot B logged a new login of seed1 (password)" -- \
  test "$(grep -c "Login: user=<$S1>, method=PLAIN" "$B/dovecot.log")" -ge 2

# --- secrets never shown ------------------------------------------------------------------
for s in "$TOK1" "$TOK2" "$PW2"; do
  check "no secret (${s%%-*}...) in the health log, /domains or the endpoint's log" -- \
    bash -c "! grep -qF -- '$s' '$LOG' '$TMP/oauth.log' && ! curl -s '$H/domains' | grep -qF -- '$s'"
done

# --- strict settings (imap_check: create only) ------------------------------------------------
# created SETTINGS-JSON - imap_check's "create failed" line (or "created")
created() {
  printf '%s\n' "$1" >"$TMP/s.json"
  "$IC" -n 1 "$TMP/s.json" '<x@t.test>' 2>/dev/null </dev/null | sed -n 's/^create failed: //p' | head -1
}
base='"host": "127.0.0.1", "port": 1, "tls": "none", "user": "u"'
printf 'bad token with spaces\n' >"$TMP/bad.token"
printf '%s\n' "$TOK2" >"$TMP/good.token"
while IFS='|' read -r name json want; do
  got=$(created "{$base, $json}")
  check "settings: $name -> '$want'" -- bash -c '[[ "$1" == *"$2"* ]]' _ "$got" "$want"
done <<EOF
token and password|"password": "p", "oauth2_token_file": "$TMP/good.token"|exactly one of the fields
token file missing|"oauth2_token_file": "$TMP/none.token"|field 'oauth2_token_file'
token file not a token|"oauth2_token_file": "$TMP/bad.token"|field 'oauth2_token_file': '$TMP/bad.token' holds a byte
engage not an object|"password": "p", "engage": true|field 'engage' must be an object
engage unknown key|"password": "p", "engage": {"rescue": true, "resuce": true}|field 'engage': unknown field 'resuce'
engage not a boolean|"password": "p", "engage": {"mark_read": 1}|field 'engage.mark_read' must be true or false
EOF
check "the malformed token file's contents are never echoed" -- \
  bash -c "! created '{$base, \"oauth2_token_file\": \"$TMP/bad.token\"}' | grep -q 'spaces'"

# --- stop --------------------------------------------------------------------------------
stop_named health
eq "health-service exits 0 on SIGTERM" "$STOP_RC" 0
check "no sanitizer report in health-service's log" -- sanitizer_clean health
stop_dovecot "$APID"
stop_dovecot "$BPID"
stop_pid "$OPID"
finish
