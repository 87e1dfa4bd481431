#!/bin/bash
# test_smtp.sh - the SmtpClients (warmup-service/smtp) against real SMTP
# servers (TAP): Postfix smtp-sink for speed, replies and timeouts, and
# aiosmtpd (smtpd_tls_auth.py) for STARTTLS, implicit TLS, AUTH, content
# capture and misbehaviour on demand. Every send goes through smtp_check,
# which builds its client from the environment as warmup-service does.
#
# Proves: 200 messages over one pipelined connection, all SENT and dumped
# with dot-stuffing undone (lone "." lines intact); lock-step without
# PIPELINING; MAILPIT preset; probe; 4xx/5xx/421 replies keep their code,
# RFC 3463 code and text (TEMPFAIL/PERMFAIL); connect, greeting, command
# and message timeouts are bounded; GOOGLE preset over STARTTLS + AUTH
# PLAIN (server log: tls, SNI, user), byte-exact content, AUTH LOGIN
# fallback, implicit TLS; a wrong CA, a wrong host name or IP, and
# STARTTLS not offered all fail closed with nothing stored; a wrong
# password is PERMFAIL with the server's 535 and never echoed; per-message
# results in a pipelined batch with rejected recipients; a server that
# closes an idle connection, or drops it when the next MAIL arrives, costs
# no message (transparent reconnect, once); a server that closes during
# DATA gives TEMPFAIL and no SIGPIPE death; 4 sessions in threads share
# one SSL_CTX; DRYRUN writes N .eml files; SMTP_CLIENTS_FILE clients by
# name; no password in any output; no sanitizer report.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
SC=${SMTP_CHECK:-$BUILD_DIR/tests/smtp_check}

[ -x "$SC" ] || { echo "Bail out! $SC is missing (build first)"; exit 1; }
command -v smtp-sink >/dev/null || { echo "Bail out! smtp-sink (postfix) is not installed"; exit 1; }
"$PY" -c 'import aiosmtpd' 2>/dev/null || { echo "Bail out! python3-aiosmtpd is not installed"; exit 1; }
command -v openssl >/dev/null || { echo "Bail out! openssl is not installed"; exit 1; }

OUT=$TMP/sc.out
ERR=$TMP/sc.err
ALLERR=$TMP/all.err
: >"$ALLERR"

# sc VAR=VALUE... -- ARGS... - smtp_check in a clean environment; results
# in $OUT, log and summary in $ERR; sets SC_RC and SC_MS (wall time)
sc() {
  local v=() s
  while [ $# -gt 0 ] && [ "$1" != -- ]; do v+=("$1"); shift; done
  shift
  s=$(date +%s%N)
  env -i PATH="$PATH" UBSAN_OPTIONS="$UBSAN_OPTIONS" ASAN_OPTIONS="$ASAN_OPTIONS" LOG_LEVEL=info \
    "${v[@]}" "$SC" "$@" >"$OUT" 2>"$ERR" </dev/null
  SC_RC=$?
  SC_MS=$((($(date +%s%N) - s) / 1000000))
  { echo "## smtp_check $*"; cat "$ERR"; } >>"$ALLERR"
}
# lines REGEX - result lines matching
lines() { grep -cE -- "$1" "$OUT"; }
# connects - connections the client opened in the last run
connects() { grep -c 'connected to' "$ERR"; }
# show - the last run, as TAP comments (after a failure)
show() { sed -n '1,6s/^/#   out: /p' "$OUT"; sed -n '1,6s/^/#   err: /p' "$ERR"; }
# expect NAME COND... - ok when the test command succeeds, else show the run
expect() { local name=$1; shift
  if "$@"; then ok 0 "$name"; else ok 1 "$name"; show; fi; }
# jcount DIR COND - events in DIR/log.jsonl for which the python COND on `e` holds
jcount() { "$PY" -c 'import json,sys
n=0
for l in open(sys.argv[1]):
    e=json.loads(l)
    n+=bool(eval(sys.argv[2]))
print(n)' "$1/log.jsonl" "$2"; }
emls() { find "$1" -maxdepth 1 -name '*.eml' | wc -l; }

gen_certs "$TMP/certs"
ok $? "test CA, server, wrong-name and unrelated-CA certificates generated"
CA=$TMP/certs/ca.pem
PW=password-Xq7
SUSER=seed1@gmail.test

# --- smtp-sink: throughput, pipelining, dump ---------------------------------
P1=$(freeport)
start_smtp_sink "$P1" "$TMP/sink1" --dump
ok $? "smtp-sink starts (PIPELINING, dumping messages)"
PLAIN=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$P1" SMTP_TLS=none)

sc "${PLAIN[@]}" -- -b 20 200
expect "CUSTOM tls=none: 200 messages all SENT (exit 0)" test "$SC_RC" = 0
eq "CUSTOM tls=none: 200 result lines '250 2.0.0 SENT'" "$(lines '^250 2\.0\.0 SENT ')" 200
eq "200 messages over one connection" "$(connects)" 1
check "the connection pipelined" -- grep -q 'pipelining=yes' "$ERR"
wait_for 5 bash -c "[ \$(ls '$TMP/sink1' | grep -c '^msg\.') -ge 200 ]"
eq "smtp-sink dumped 200 messages" "$(ls "$TMP/sink1" | grep -c '^msg\.')" 200
eq "200 distinct subjects arrived" \
  "$(cat "$TMP"/sink1/msg.* | grep '^Subject: smtp_check ' | sort -u | wc -l)" 200
eq "dot-stuffing undone: a lone '.' line in every message" \
  "$(grep -lx '\.' "$TMP"/sink1/msg.* | wc -l)" 200
eq "dot-stuffing undone: '.leading dot' and '..two dots' intact" \
  "$(grep -lx '\.leading dot' "$TMP"/sink1/msg.* | xargs grep -lx '\.\.two dots' | wc -l)" 200

sc CHOOSEN_SMTP_CLIENT_TYPE=MAILPIT MAILPIT_SMTP_ADDR="127.0.0.1:$P1" -- -b 4 10
expect "MAILPIT preset (MAILPIT_SMTP_ADDR): 10 messages SENT" \
  test "$SC_RC" = 0 -a "$(lines '^250 .* SENT ')" = 10
sc CHOOSEN_SMTP_CLIENT_TYPE=MAILPIT MAILPIT_SMTP_ADDR="127.0.0.1:$P1" -- -P
expect "probe: a listening server is ready" grep -qx 'probe ok' "$OUT"
PDEAD=$(freeport)
sc CHOOSEN_SMTP_CLIENT_TYPE=MAILPIT MAILPIT_SMTP_ADDR="127.0.0.1:$PDEAD" -- -P
expect "probe: a closed port is not ready (Connection refused)" \
  grep -q '^probe failed: connect to 127.0.0.1:.*Connection refused' "$OUT"

# STARTTLS required, smtp-sink offers none: fail closed, nothing sent
before=$(ls "$TMP/sink1" | grep -c '^msg\.')
sc CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE GMAIL_SMTP_USERNAME=$SUSER GMAIL_SMTP_APP_PASSWORD=$PW \
  GMAIL_SMTP_HOST=127.0.0.1 GMAIL_SMTP_PORT="$P1" -- -b 3 3
expect "GOOGLE to a server without STARTTLS: TEMPFAIL code 0 'STARTTLS required but not offered'" \
  test "$(lines '^0 - TEMPFAIL TLS: STARTTLS required but not offered')" = 3
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$P1" SMTP_USERNAME=u \
  SMTP_PASSWORD=$PW -- -b 2 2
expect "CUSTOM default tls=starttls without STARTTLS offered: fails closed" \
  test "$(lines '^0 - TEMPFAIL TLS: STARTTLS required but not offered')" = 2
sleep 0.2
eq "nothing reached smtp-sink without TLS" "$(ls "$TMP/sink1" | grep -c '^msg\.')" "$before"
check "the password never appears in results or logs" -- bash -c "! grep -q '$PW' '$ALLERR' '$OUT'"

stop_pid "$SINK_PID"

# throughput of one session (no dump, so the disk does not count):
# PIPELINING (one round trip per message) vs lock-step (-p: four)
P2=$(freeport)
start_smtp_sink "$P2" "$TMP/sink2"
ok $? "smtp-sink without dump starts"
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$P2" SMTP_TLS=none -- -q -b 50 2000
pipe_rate=$(sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' "$ERR")
expect "pipelined: 2000 messages SENT over one connection" \
  test "$SC_RC" = 0 -a "$(connects)" = 1
stop_pid "$SINK_PID"
PL=$(freeport)
start_smtp_sink "$PL" "$TMP/sink3" -p
ok $? "smtp-sink -p (no PIPELINING) starts"
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$PL" SMTP_TLS=none -- -q -b 50 2000
step_rate=$(sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' "$ERR")
expect "lock-step without PIPELINING: 2000 messages SENT" grep -q 'summary sent=2000 ' "$ERR"
check "lock-step session reports pipelining=no" -- grep -q 'pipelining=no' "$ERR"
echo "# one session, 2 KB messages: pipelined ${pipe_rate:-?} msg/s, lock-step ${step_rate:-?} msg/s (this build)"
stop_pid "$SINK_PID"

# --- smtp-sink: replies that refuse (lock-step: -r/-f imply -p) ------------------
# reply_case NAME SINK-ARGS EXPECTED-REGEX - 3 messages, each must match
reply_case() {
  local name=$1 args=$2 want=$3 p
  p=$(freeport)
  start_smtp_sink "$p" "$TMP/rc" $args || { ok 1 "$name (smtp-sink)"; return; }
  sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$p" SMTP_TLS=none -- -b 3 3
  expect "$name" test "$(lines "$want")" = 3 -a "$SC_RC" = 1
  stop_pid "$SINK_PID"
}
reply_case "RCPT answered 4xx: TEMPFAIL 450 4.3.0 with the text" "-r RCPT" \
  '^450 4\.3\.0 TEMPFAIL 450 4\.3\.0 Error: command failed$'
eq "three refused RCPTs on one connection (RSET keeps it in step)" "$(connects)" 1
reply_case "RCPT answered 5xx: PERMFAIL 500 5.3.0 with the text" "-f RCPT" \
  '^500 5\.3\.0 PERMFAIL 500 5\.3\.0 Error: command failed$'
reply_case "MAIL answered 5xx: PERMFAIL" "-f MAIL" '^500 5\.3\.0 PERMFAIL '
reply_case "DATA answered 4xx: TEMPFAIL" "-r DATA" '^450 4\.3\.0 TEMPFAIL '
reply_case "end of data answered 5xx: PERMFAIL (the final reply decides)" "-f ." \
  '^500 5\.3\.0 PERMFAIL '
reply_case "421 and disconnect at MAIL: TEMPFAIL 421, no hang" "-Q MAIL" \
  '^421 4\.0\.0 TEMPFAIL 421 '
reply_case "disconnect without reply at MAIL: TEMPFAIL code 0, no retry loop" "-q MAIL" \
  '^0 - TEMPFAIL connection closed by the server while waiting for the MAIL FROM reply$'
eq "a fresh connection that breaks is not retried: one connection per message" "$(connects)" 3

# --- timeouts (smtp-sink -W delays are asynchronous: use -p, lock-step) ----------
timeout_case() {
  local name=$1 args=$2 want=$3 p
  shift 3
  p=$(freeport)
  start_smtp_sink "$p" "$TMP/to" -p $args || { ok 1 "$name (smtp-sink)"; return; }
  sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$p" SMTP_TLS=none "$@" -- -b 1 1
  expect "$name (${SC_MS} ms)" test "$(lines "$want")" = 1 -a "$SC_MS" -lt 2500
  stop_pid "$SINK_PID"
}
timeout_case "command timeout: TEMPFAIL code 0 'timed out after 500 ms waiting for the RCPT TO reply'" \
  "-W RCPT:4" '^0 - TEMPFAIL timed out after 500 ms waiting for the RCPT TO reply$' \
  SMTP_COMMAND_TIMEOUT_MS=500
timeout_case "message timeout bounds the DATA phase: 'timed out after 700 ms waiting for the end-of-data reply'" \
  "-W .:4" '^0 - TEMPFAIL timed out after 700 ms waiting for the end-of-data reply$' \
  SMTP_MESSAGE_TIMEOUT_MS=700

# a listener that never accepts or speaks; then one whose backlog is full
PS=$(freeport)
"$PY" -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(0)
held=[]
if sys.argv[3] == "full":
    for i in range(3):
        c=socket.socket(); c.setblocking(False); c.connect_ex(("127.0.0.1",int(sys.argv[1]))); held.append(c)
open(sys.argv[2],"w").close(); time.sleep(300)' "$PS" "$TMP/silent.ready" full &
SILENT=$!
track $SILENT
wait_for 5 test -e "$TMP/silent.ready"
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$PS" SMTP_TLS=none \
  SMTP_CONNECT_TIMEOUT_MS=600 -- -b 2 2
expect "connect timeout: TEMPFAIL code 0 'timed out after 600 ms' for the batch (${SC_MS} ms)" \
  test "$(lines '^0 - TEMPFAIL connect to 127\.0\.0\.1:[0-9]+ failed: 127\.0\.0\.1: timed out after 600 ms$')" = 2 -a "$SC_MS" -lt 2500
stop_pid $SILENT
PS=$(freeport)
rm -f "$TMP/silent.ready"
"$PY" -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(8)
open(sys.argv[2],"w").close(); time.sleep(300)' "$PS" "$TMP/silent.ready" &
SILENT=$!
track $SILENT
wait_for 5 test -e "$TMP/silent.ready"
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$PS" SMTP_TLS=none \
  SMTP_COMMAND_TIMEOUT_MS=600 -- -b 1 1
expect "greeting timeout: TEMPFAIL code 0 'timed out after 600 ms waiting for the greeting' (${SC_MS} ms)" \
  test "$(lines '^0 - TEMPFAIL timed out after 600 ms waiting for the greeting$')" = 1 -a "$SC_MS" -lt 2500
stop_pid $SILENT

# --- aiosmtpd: STARTTLS + AUTH (the GOOGLE preset pointed at it) ----------------
P3=$(freeport)
start_smtpd_tls "$P3" "$TMP/tls" "$TMP/certs" "$SUSER:$PW"
ok $? "aiosmtpd with STARTTLS and AUTH required starts"
GOOGLE=(CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE GMAIL_SMTP_USERNAME=$SUSER GMAIL_SMTP_APP_PASSWORD=$PW
  GMAIL_SMTP_HOST=localhost GMAIL_SMTP_PORT="$P3" SMTP_CA_FILE="$CA")
sc "${GOOGLE[@]}" -- -b 5 20
expect "GOOGLE preset over STARTTLS + AUTH: 20 messages SENT" \
  test "$SC_RC" = 0 -a "$(lines '^250 2\.0\.0 SENT 250 2\.0\.0 OK stored as ')" = 20
eq "20 messages over one connection (TLS 1.3 tickets do not hang it)" "$(connects)" 1
eq "server log: 20 messages over TLS from the authenticated user" \
  "$(jcount "$TMP/tls" "e['event']=='message' and e['tls'] and e['auth'] and e['user']=='$SUSER'")" 20
eq "server log: the client sent SNI 'localhost'" "$(jcount "$TMP/tls" "e['event']=='tls' and e['sni']=='localhost'")" 1
eq "server log: AUTH PLAIN preferred" "$(jcount "$TMP/tls" "e['event']=='auth' and e['mech']=='PLAIN' and e['ok']")" 1
eq "20 .eml files stored" "$(emls "$TMP/tls")" 20
sc "${GOOGLE[@]}" -- -t 4 -b 5 40
expect "4 sessions in 4 threads sharing one SSL_CTX: 40 messages SENT over 4 connections" \
  test "$SC_RC" = 0 -a "$(lines '^250 .* SENT ')" = 40 -a "$(connects)" = 4
eq "60 .eml files stored" "$(emls "$TMP/tls")" 60

# byte-exact content: CRLF, lone dots, 8-bit UTF-8, no final line end added
printf 'From: <a@example.test>\r\nTo: <b@example.test>\r\nSubject: exact\r\n\r\n.\r\n..\r\n.x\r\nh\xc3\xa9 \xe2\x9c\x93\r\n\r\nlast\r\n' >"$TMP/exact.eml"
sc "${GOOGLE[@]}" -- -d "$TMP/exact.eml" -b 1 1
last=$(ls -t "$TMP"/tls/*.eml | head -1)
expect "the stored message is byte-identical to what was sent" cmp -s "$TMP/exact.eml" "$last"
eq "8-bit content announced with BODY=8BITMIME" \
  "$(jcount "$TMP/tls" "e['event']=='message' and 'BODY=8BITMIME' in e['mail_options']")" 1

sc "${GOOGLE[@]}" GMAIL_SMTP_HOST=127.0.0.1 -- -b 2 2
expect "connecting to 127.0.0.1 verifies the certificate's IP address: SENT" \
  test "$(lines '^250 .* SENT ')" = 2

stored=$(emls "$TMP/tls")
auths=$(jcount "$TMP/tls" "e['event']=='auth'")
sc "${GOOGLE[@]}" SMTP_CA_FILE="$TMP/certs/other-ca.pem" -- -b 3 3
expect "wrong CA: TEMPFAIL code 0 'TLS: certificate verify failed'" \
  test "$(lines '^0 - TEMPFAIL TLS: certificate verify failed: ')" = 3
eq "wrong CA: nothing stored, no AUTH sent" "$(emls "$TMP/tls") $(jcount "$TMP/tls" "e['event']=='auth'")" \
  "$stored $auths"
sc "${GOOGLE[@]}" GMAIL_SMTP_APP_PASSWORD=wrong-pass-9 -- -b 3 3
expect "wrong password: every message PERMFAIL with the server's 535 reply" \
  test "$(lines '^535 5\.7\.8 PERMFAIL 535 5\.7\.8 Authentication credentials invalid$')" = 3
check "wrong password: not echoed anywhere" -- bash -c "! grep -q wrong-pass-9 '$OUT' '$ERR'"
eq "wrong password: nothing stored" "$(emls "$TMP/tls")" "$stored"
sc "${GOOGLE[@]}" -- -P
expect "GOOGLE probe (TLS verified, no AUTH): ready" grep -qx 'probe ok' "$OUT"
stop_pid "$SMTPD_PID"

# the same server offering only LOGIN
start_smtpd_tls "$P3" "$TMP/login" "$TMP/certs" "$SUSER:$PW" --exclude-mech PLAIN
sc "${GOOGLE[@]}" -- -b 2 2
expect "AUTH LOGIN when PLAIN is not offered: SENT" test "$(lines '^250 .* SENT ')" = 2
eq "server log: AUTH LOGIN used" "$(jcount "$TMP/login" "e['event']=='auth' and e['mech']=='LOGIN' and e['ok']")" 1
stop_pid "$SMTPD_PID"

# a certificate for wrong.test only (signed by the right CA)
start_smtpd_tls "$P3" "$TMP/wrong" "$TMP/certs" "$SUSER:$PW" \
  --cert "$TMP/certs/wrong.pem" --key "$TMP/certs/wrong.key"
sc "${GOOGLE[@]}" -- -b 2 2
expect "wrong host name (localhost vs wrong.test): TEMPFAIL 'certificate verify failed: hostname mismatch'" \
  test "$(lines '^0 - TEMPFAIL TLS: certificate verify failed: hostname mismatch')" = 2
sc "${GOOGLE[@]}" GMAIL_SMTP_HOST=127.0.0.1 -- -b 2 2
expect "wrong IP address (127.0.0.1 vs wrong.test): TEMPFAIL 'certificate verify failed: IP address mismatch'" \
  test "$(lines '^0 - TEMPFAIL TLS: certificate verify failed: IP address mismatch')" = 2
eq "wrong host name: nothing stored, no AUTH sent" \
  "$(emls "$TMP/wrong") $(jcount "$TMP/wrong" "e['event']=='auth'")" "0 0"
stop_pid "$SMTPD_PID"

# implicit TLS (port 465 style)
P4=$(freeport)
start_smtpd_tls "$P4" "$TMP/implicit" "$TMP/certs" "$SUSER:$PW" --implicit-tls
ok $? "aiosmtpd with implicit TLS starts"
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=localhost SMTP_PORT="$P4" SMTP_TLS=tls \
  SMTP_USERNAME=$SUSER SMTP_PASSWORD=$PW SMTP_CA_FILE="$CA" -- -b 3 3
expect "CUSTOM tls=tls: 3 messages SENT" test "$SC_RC" = 0 -a "$(lines '^250 .* SENT ')" = 3
eq "server log: 3 messages over TLS from the authenticated user" \
  "$(jcount "$TMP/implicit" "e['event']=='message' and e['tls'] and e['user']=='$SUSER'")" 3
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=localhost SMTP_PORT="$P4" SMTP_TLS=tls \
  SMTP_USERNAME=$SUSER SMTP_PASSWORD=$PW SMTP_CA_FILE="$TMP/certs/other-ca.pem" -- -b 1 1
expect "implicit TLS with the wrong CA fails closed" \
  test "$(lines '^0 - TEMPFAIL TLS: certificate verify failed')" = 1
stop_pid "$SMTPD_PID"

# --- pipelined batches with refusals (plain aiosmtpd advertising PIPELINING) ------
P5=$(freeport)
start_smtpd_tls "$P5" "$TMP/pipe" "$TMP/certs" "$SUSER:$PW" --no-require-tls --no-auth-required --pipelining
ok $? "plain aiosmtpd with PIPELINING starts"
RCPTS=ok1@example.test,reject550@example.test,ok2@example.test,reject450@example.test,ok3@example.test
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$P5" SMTP_TLS=none -- -r "$RCPTS" -b 5 10
cut -d' ' -f1-3 "$OUT" >"$TMP/pipe.got"
printf '%s\n' "250 2.0.0 SENT" "550 5.1.1 PERMFAIL" "250 2.0.0 SENT" "450 4.2.1 TEMPFAIL" "250 2.0.0 SENT" \
  "250 2.0.0 SENT" "550 5.1.1 PERMFAIL" "250 2.0.0 SENT" "450 4.2.1 TEMPFAIL" "250 2.0.0 SENT" >"$TMP/pipe.want"
expect "pipelined batch: each message its own result, in order" cmp -s "$TMP/pipe.got" "$TMP/pipe.want"
check "pipelined batch: the rejection text is the server's" -- \
  grep -q '^550 5.1.1 PERMFAIL 550 5.1.1 <reject550@example.test>: Recipient address rejected' "$OUT"
eq "pipelined batch: one connection" "$(connects)" 1
check "pipelined batch: the session pipelined" -- grep -q 'pipelining=yes' "$ERR"
eq "pipelined batch: the 6 accepted messages stored for the right recipients" \
  "$(jcount "$TMP/pipe" "e['event']=='message' and e['rcpt'][0].startswith('ok')")" 6
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$P5" SMTP_TLS=none -- \
  -f reject@example.test -b 3 3
expect "sender refused: PERMFAIL 553 5.7.1 for each message" \
  test "$(lines '^553 5\.7\.1 PERMFAIL 553 5\.7\.1 <reject@example\.test>: Sender address rejected$')" = 3
stop_pid "$SMTPD_PID"
start_smtpd_tls "$P5" "$TMP/lock" "$TMP/certs" "$SUSER:$PW" --no-require-tls --no-auth-required
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$P5" SMTP_TLS=none -- -r "$RCPTS" -b 5 10
cut -d' ' -f1-3 "$OUT" >"$TMP/lock.got"
expect "lock-step batch (no PIPELINING): the same results in order" cmp -s "$TMP/lock.got" "$TMP/pipe.want"
stop_pid "$SMTPD_PID"

# --- connections the server closes ----------------------------------------------
P6=$(freeport)
start_smtpd_tls "$P6" "$TMP/idle" "$TMP/certs" "$SUSER:$PW" --no-require-tls --no-auth-required \
  --pipelining --idle-timeout 0.4
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$P6" SMTP_TLS=none -- -b 2 -p 1200 4
expect "server closed the idle connection between two sends: all 4 SENT" \
  test "$SC_RC" = 0 -a "$(lines '^250 .* SENT ')" = 4
check "the client noticed the closed idle connection and reconnected" -- \
  grep -q 'server closed the idle connection; reconnecting' "$ERR"
eq "two connections, one per send() call" "$(connects) $(jcount "$TMP/idle" "e['event']=='connect'")" "2 2"
stop_pid "$SMTPD_PID"
start_smtpd_tls "$P6" "$TMP/idletls" "$TMP/certs" "$SUSER:$PW" --idle-timeout 0.4
sc "${GOOGLE[@]}" GMAIL_SMTP_PORT="$P6" -- -b 2 -p 1200 4
expect "the same over STARTTLS + AUTH: all 4 SENT over 2 connections" \
  test "$SC_RC" = 0 -a "$(connects)" = 2
stop_pid "$SMTPD_PID"

for mode in pipelining lockstep; do
  extra=()
  [ $mode = pipelining ] && extra=(--pipelining)
  start_smtpd_tls "$P6" "$TMP/drop-$mode" "$TMP/certs" "$SUSER:$PW" --no-require-tls --no-auth-required \
    --drop-mail-after 1 "${extra[@]}"
  sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$P6" SMTP_TLS=none -- -b 5 5
  expect "$mode: connection dropped at the next MAIL (no reply): retried on a new one, all 5 SENT" \
    test "$SC_RC" = 0 -a "$(lines '^250 .* SENT ')" = 5
  eq "$mode: 5 stored exactly once, 4 drops, 5 connections" \
    "$(emls "$TMP/drop-$mode") $(jcount "$TMP/drop-$mode" "e['event']=='drop'") $(connects)" "5 4 5"
  stop_pid "$SMTPD_PID"
done

# the server closes right after 354: writing 4 MB must not raise SIGPIPE
start_smtpd_tls "$P6" "$TMP/cod" "$TMP/certs" "$SUSER:$PW" --no-require-tls --no-auth-required --close-on-data
sc CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$P6" SMTP_TLS=none -- -s 4000000 -b 1 2
expect "closed during DATA (plain): TEMPFAIL code 0, process alive (exit $SC_RC, not 141)" \
  test "$SC_RC" = 1 -a "$(lines '^0 - TEMPFAIL connection (lost|closed)')" = 2
stop_pid "$SMTPD_PID"
start_smtpd_tls "$P6" "$TMP/codtls" "$TMP/certs" "$SUSER:$PW" --close-on-data
sc "${GOOGLE[@]}" GMAIL_SMTP_PORT="$P6" -- -s 4000000 -b 1 2
expect "closed during DATA (TLS): TEMPFAIL code 0, process alive (exit $SC_RC, not 141)" \
  test "$SC_RC" = 1 -a "$(lines '^0 - TEMPFAIL connection (lost|closed)')" = 2
stop_pid "$SMTPD_PID"

# --- DRYRUN -----------------------------------------------------------------------
sc CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool/dry" -- -b 3 7
expect "DRYRUN: 7 messages SENT 250 2.0.0" test "$(lines '^250 2\.0\.0 SENT 250 2\.0\.0 Ok: spooled as ')" = 7
eq "DRYRUN: 7 .eml files, no temporary file left" \
  "$(emls "$TMP/spool/dry") $(find "$TMP/spool/dry" -name '.*' -type f | wc -l)" "7 0"
eq "DRYRUN: each file holds its message and envelope" \
  "$(grep -l '^Subject: smtp_check ' "$TMP"/spool/dry/*.eml | xargs grep -l '^Delivered-To: rcpt@example.test' | wc -l)" 7

# several named clients from SMTP_CLIENTS_FILE, the password from a file
printf '%s\n' "$PW" >"$TMP/pw"
cat >"$TMP/clients.json" <<EOF
[{"name": "dry", "type": "DRYRUN", "spool_dir": "$TMP/spool/file"},
 {"name": "implicit", "type": "CUSTOM", "host": "localhost", "port": $P4, "tls": "tls",
  "username": "$SUSER", "password_file": "$TMP/pw", "ca_file": "$CA", "connections": 2}]
EOF
start_smtpd_tls "$P4" "$TMP/implicit2" "$TMP/certs" "$SUSER:$PW" --implicit-tls
sc SMTP_CLIENTS_FILE="$TMP/clients.json" -- -b 2 3
eq "SMTP_CLIENTS_FILE: the first entry (dry) is the default" "$(emls "$TMP/spool/file") $SC_RC" "3 0"
sc SMTP_CLIENTS_FILE="$TMP/clients.json" -- -c implicit -b 2 3
expect "SMTP_CLIENTS_FILE: client 'implicit' by name, password from password_file: SENT" \
  test "$SC_RC" = 0 -a "$(jcount "$TMP/implicit2" "e['event']=='message' and e['user']=='$SUSER'")" = 3
stop_pid "$SMTPD_PID"

check "no password in any smtp_check output" -- bash -c "! grep -q -e '$PW' -e wrong-pass-9 '$ALLERR'"
check "no sanitizer report from any smtp_check run" -- \
  bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$ALLERR'"
finish
