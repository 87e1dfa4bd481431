#!/bin/bash
# test_imap.sh - the IMAP FeedbackLoop (health-service/loops/loop_imap.c)
# against a real Dovecot (TAP). Every round goes through imap_check, which
# creates the loop from a JSON settings file as the scheduler does.
#
# Proves: messages in INBOX and Junk, unseen, \Seen, \Seen+\Answered,
# \Seen+\Flagged and \Flagged alone give exactly the expected placement,
# opened and read per Message-ID; absent ones (also one in another seed
# mailbox, and a near-miss id) are not_found; an unsearchable id stays
# unknown; the spam folder is found by SPECIAL-USE \Junk (also under
# another name, "Bulk Mail"); STARTTLS and implicit TLS with the test CA
# (host name and IP) and plain IMAP work; one connection serves several
# rounds; checking changes no flag (Maildir names and doveadm); a wrong CA,
# the system trust store, a certificate for another name (host and IP) all
# fail closed before LOGIN (Dovecot logs no login); STARTTLS not offered
# fails closed; a wrong password is -1 with the server's reason and never
# echoed; password_file; strict settings naming the field; a missing spam
# folder fails the round but keeps the connection; a silent server is
# bounded by timeout_ms; reconnect backoff 1 s, 2 s ("reconnecting in N
# s"); Dovecot stopped mid-run -> -1 with every copy unknown, restarted ->
# a later round succeeds on a new connection; no sanitizer report.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
. "$(dirname "$0")/dovecot.sh"
IC=${IMAP_CHECK:-$BUILD_DIR/tests/imap_check}

[ -x "$IC" ] || { echo "Bail out! $IC is missing (build first)"; exit 1; }
command -v dovecot >/dev/null || { echo "Bail out! dovecot is not installed (dovecot-imapd)"; exit 1; }
command -v doveadm >/dev/null || { echo "Bail out! doveadm is not installed"; exit 1; }
command -v openssl >/dev/null || { echo "Bail out! openssl is not installed"; exit 1; }

OUT=$TMP/ic.out
ERR=$TMP/ic.err
ALLERR=$TMP/all.err
: >"$ALLERR"
SEED=seed1@gmail.test
WRONGPW=Wr0ng-Secret-42

# ic SETTINGS ARGS... - imap_check with SETTINGS ($TMP/SETTINGS.json);
# stdout in $OUT, log in $ERR; sets IC_RC and IC_MS (wall time)
ic() {
  local s=$1 t
  shift
  t=$(date +%s%N)
  env LOG_LEVEL=info "$IC" "$@" "$TMP/$s.json" "${IDS[@]}" >"$OUT" 2>"$ERR" </dev/null
  IC_RC=$?
  IC_MS=$((($(date +%s%N) - t) / 1000000))
  { echo "## imap_check $s $*"; cat "$OUT" "$ERR"; } >>"$ALLERR"
}
# settings NAME JSON - write $TMP/NAME.json
settings() { printf '%s\n' "$2" >"$TMP/$1.json"; }
# got ID - "placement opened read" of ID in the last round of the last run
got() { grep -F -- "$1 " "$OUT" | tail -1 | cut -d' ' -f2-; }
# show - the last run, as TAP comments (after a failure)
show() { sed -n '1,20s/^/#   out: /p' "$OUT"; sed -n '1,8s/^/#   err: /p' "$ERR"; }
# expect NAME COND... - ok when the test command succeeds, else show the run
expect() { local name=$1; shift
  if "$@"; then ok 0 "$name"; else ok 1 "$name"; show; fi; }
logins() { grep -c 'imap-login: Info: Login: ' "$1/dovecot.log"; }
connects() { grep -c 'imap loop connected' "$ERR"; }
mkmsg() {
  printf 'From: Sender <sender@example.test>\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n\r\nHello\r\n' \
    "${3:-$SEED}" "$2" "$(date -R)" "$1"
}

gen_certs "$TMP/certs"
ok $? "test CA, server, wrong-name and unrelated-CA certificates generated"
CA=$TMP/certs/ca.pem
DC=$TMP/dovecot
P=$(freeport)
PS=$(freeport)
start_dovecot "$DC" "$P" "$PS" "$TMP/certs"
ok $? "Dovecot starts (STARTTLS on $P, implicit TLS on $PS)" || { finish; exit 1; }
DPID=$DOVECOT_PID

# --- the seed mailboxes ------------------------------------------------------------
# id folder seen flags -> expected "placement opened read"
CASES="
<in-new@t.test>          INBOX 0 -  inbox 0 0
<in-seen@t.test>         INBOX 1 -  inbox 1 0
<in-answered@t.test>     INBOX 1 R  inbox 1 1
<in-flagged@t.test>      INBOX 1 F  inbox 1 1
<in-flagged-only@t.test> INBOX 0 F  inbox 0 0
<in-all@t.test>          INBOX 1 FR inbox 1 1
<junk-new@t.test>        Junk  0 -  spam 0 0
<junk-seen@t.test>       Junk  1 -  spam 1 0
<junk-answered@t.test>   Junk  1 R  spam 1 1
<junk-flagged@t.test>    Junk  1 F  spam 1 1
"
IDS=()
declare -A WANT
while read -r id folder seen flags w1 w2 w3; do
  [ -n "$id" ] || continue
  [ "$flags" = - ] && flags=
  mkmsg "$id" "case $id" | put_message "$DC" "$SEED" "$folder" "$seen" "$flags" >>"$TMP/files"
  IDS+=("$id")
  WANT[$id]="$w1 $w2 $w3"
done <<<"$CASES"
mkmsg '<seed2-only@t.test>' 'for seed2' seed2@gmail.test |
  put_message "$DC" seed2@gmail.test INBOX 1 "" >/dev/null
IDS+=('<missing@t.test>' '<seed2-only@t.test>' '<n-seen@t.test>')
WANT['<missing@t.test>']="not_found 0 0"
WANT['<seed2-only@t.test>']="not_found 0 0"
WANT['<n-seen@t.test>']="not_found 0 0" # a substring of in-seen without its '<'
eq "10 messages delivered into the Maildir (flagged ones in cur/, 2 without flags in new/)" \
  "$(wc -l <"$TMP/files") $(grep -c '^new/' "$TMP/files")" "10 2"
NEWFILE=$(grep -m1 '^new/' "$TMP/files")
FLAGONLY=$(grep ':2,F$' "$TMP/files")
check "the unseen INBOX message is in new/ before any round" -- test -f "$DC/home/$SEED/Maildir/$NEWFILE"

# all_expected - every id of IDS has its expected answer in the last round
all_expected() {
  local id bad=0
  for id in "${IDS[@]}"; do
    if [ "$(got "$id")" != "${WANT[$id]}" ]; then
      echo "#   $id: got '$(got "$id")', want '${WANT[$id]}'"
      bad=1
    fi
  done
  return $bad
}

# --- STARTTLS, implicit TLS, plain ---------------------------------------------
settings starttls "{\"host\": \"localhost\", \"port\": $P, \"tls\": \"starttls\", \"user\": \"$SEED\",
  \"password\": \"password\", \"ca_file\": \"$CA\"}"
ic starttls -n 3
expect "STARTTLS with the test CA: 3 rounds, each rc=0" \
  test "$IC_RC" = 0 -a "$(grep -c '^round [0-9]* rc=0 ' "$OUT")" = 3
expect "STARTTLS: every Message-ID has exactly its placement, opened and read" all_expected
eq "3 rounds over one connection (one LOGIN)" "$(connects)" 1
expect "spam folder discovered by SPECIAL-USE \\Junk when not configured" \
  grep -q 'spam="Junk" spam_from=special-use' "$ERR"
expect "the Dovecot session was TLS (log: Login ... TLS)" \
  grep -q "Login: user=<$SEED>, method=PLAIN, .*, TLS" "$DC/dovecot.log"

settings implicit "{\"host\": \"127.0.0.1\", \"port\": $PS, \"user\": \"$SEED\", \"password\": \"password\",
  \"ca_file\": \"$CA\", \"spam\": \"Junk\"}"
ic implicit
expect "implicit TLS (default tls) to 127.0.0.1 with the test CA (IP SAN): rc=0" test "$IC_RC" = 0
expect "implicit TLS: every Message-ID has exactly its placement, opened and read" all_expected
expect "a configured spam folder is used as is" grep -q 'spam="Junk" spam_from=settings' "$ERR"

settings plain "{\"host\": \"127.0.0.1\", \"port\": $P, \"tls\": \"none\", \"user\": \"$SEED\",
  \"password\": \"password\"}"
ic plain
expect "tls none (port $P): rc=0" test "$IC_RC" = 0
expect "tls none: every Message-ID has exactly its placement, opened and read" all_expected

bad='<bad'$'\x01''id@t.test>'
IDS_SAVE=("${IDS[@]}")
IDS=('<in-seen@t.test>' "$bad" '')
ic starttls
expect "an unsearchable Message-ID (control byte) and an empty one stay unknown, the round still runs" \
  test "$IC_RC" = 0 -a "$(got '<in-seen@t.test>')" = "inbox 1 0" \
  -a "$(sed -n 2p "$OUT" | cut -d' ' -f2-)" = "unknown 0 0" \
  -a "$(sed -n 3p "$OUT")" = " unknown 0 0"
IDS=("${IDS_SAVE[@]}")

# --- checking changes nothing ----------------------------------------------------
check "after 6 rounds the unseen INBOX message is still in new/ (name unchanged)" -- \
  test -f "$DC/home/$SEED/Maildir/$NEWFILE"
check "the \\Flagged-only message still carries no S in its Maildir name" -- \
  test -f "$DC/home/$SEED/Maildir/$FLAGONLY"
f=$(dovecot_flags "$DC" "$SEED" INBOX '<in-new@t.test>')
expect "doveadm: the unseen message has no \\Seen after the rounds ($f)" \
  bash -c "[[ '$f' == flags=* && '$f' != *Seen* ]]"
f=$(dovecot_flags "$DC" "$SEED" Junk '<junk-new@t.test>')
expect "doveadm: the unseen Junk message has no \\Seen either ($f)" \
  bash -c "[[ '$f' == flags=* && '$f' != *Seen* ]]"

# --- password_file, wrong password -------------------------------------------------
printf 'password\n' >"$TMP/pw"
settings pwfile "{\"host\": \"localhost\", \"port\": $P, \"tls\": \"starttls\", \"user\": \"$SEED\",
  \"password_file\": \"$TMP/pw\", \"ca_file\": \"$CA\"}"
ic pwfile
expect "password_file (trailing newline stripped): rc=0" test "$IC_RC" = 0 -a "$(got '<in-answered@t.test>')" = "inbox 1 1"

settings wrongpw "{\"host\": \"localhost\", \"port\": $P, \"tls\": \"starttls\", \"user\": \"$SEED\",
  \"password\": \"$WRONGPW\", \"ca_file\": \"$CA\"}"
ic wrongpw
expect "wrong password: rc=-1 with the server's reason ('Authentication failed')" \
  grep -q "^round 1 rc=-1 .*error=LOGIN as $SEED failed: .*Authentication failed" "$OUT"
expect "wrong password: every copy unknown" test "$(grep -c ' unknown 0 0$' "$OUT")" = "${#IDS[@]}"
check "wrong password: the password appears in no output or log" -- bash -c "! grep -q '$WRONGPW' '$OUT' '$ERR'"

# --- certificates: fail closed before LOGIN ---------------------------------------
before=$(logins "$DC")
settings wrongca "{\"host\": \"localhost\", \"port\": $P, \"tls\": \"starttls\", \"user\": \"$SEED\",
  \"password\": \"password\", \"ca_file\": \"$TMP/certs/other-ca.pem\"}"
ic wrongca
expect "STARTTLS + unrelated CA: rc=-1, the reason names the certificate" \
  grep -q '^round 1 rc=-1 .*error=certificate of localhost:[0-9]* not trusted: .*other-ca.pem' "$OUT"
expect "unrelated CA: every copy unknown" test "$(grep -c ' unknown 0 0$' "$OUT")" = "${#IDS[@]}"
settings wrongca2 "{\"host\": \"localhost\", \"port\": $PS, \"tls\": \"tls\", \"user\": \"$SEED\",
  \"password\": \"password\", \"ca_file\": \"$TMP/certs/other-ca.pem\"}"
ic wrongca2
expect "implicit TLS + unrelated CA: rc=-1, certificate not trusted" \
  grep -q '^round 1 rc=-1 .*error=certificate of localhost:[0-9]* not trusted' "$OUT"
settings sysca "{\"host\": \"localhost\", \"port\": $PS, \"user\": \"$SEED\", \"password\": \"password\"}"
ic sysca
expect "no ca_file: the system trust store does not know the test CA -> rc=-1" \
  grep -q '^round 1 rc=-1 .*not trusted: .*(system trust store)' "$OUT"
sleep 0.3 # let imap-login write its disconnect lines
eq "Dovecot logged no LOGIN for the 3 rejected sessions" "$(logins "$DC")" "$before"
expect "Dovecot saw those sessions end without any auth attempt" \
  test "$(grep -c 'imap-login: Info: Disconnected: .*(no auth attempts in [0-9]* secs): user=<>, .*TLS' "$DC/dovecot.log")" -ge 3

# a second Dovecot whose certificate is for wrong.test only (same CA), and
# whose \Junk folder is called "Bulk Mail"
mkdir -p "$TMP/wrongcerts"
cp "$TMP/certs/wrong.pem" "$TMP/wrongcerts/server.pem"
cp "$TMP/certs/wrong.key" "$TMP/wrongcerts/server.key"
DW=$TMP/dovecot-wrong
PW2=$(freeport)
PWS=$(freeport)
start_dovecot "$DW" "$PW2" "$PWS" "$TMP/wrongcerts" "Bulk Mail"
ok $? "second Dovecot starts (certificate for wrong.test, \\Junk folder 'Bulk Mail')"
WPID=$DOVECOT_PID
settings wronghost "{\"host\": \"localhost\", \"port\": $PWS, \"user\": \"$SEED\", \"password\": \"password\",
  \"ca_file\": \"$CA\"}"
ic wronghost
expect "implicit TLS, certificate for wrong.test, host localhost: rc=-1 'does not match the host name'" \
  grep -q '^round 1 rc=-1 .*error=certificate of localhost:[0-9]* does not match the host name localhost' "$OUT"
settings wrongip "{\"host\": \"127.0.0.1\", \"port\": $PW2, \"tls\": \"starttls\", \"user\": \"$SEED\",
  \"password\": \"password\", \"ca_file\": \"$CA\"}"
ic wrongip
expect "STARTTLS, certificate for wrong.test, host 127.0.0.1: rc=-1 'does not match the IP address'" \
  grep -q '^round 1 rc=-1 .*does not match the IP address 127.0.0.1' "$OUT"
sleep 0.3
eq "the wrong-name Dovecot logged no LOGIN" "$(logins "$DW")" 0

mkmsg '<bulk@t.test>' 'bulk' | put_message "$DW" "$SEED" "Bulk Mail" 0 "" >/dev/null
mkmsg '<bulk-read@t.test>' 'bulk read' | put_message "$DW" "$SEED" "Bulk Mail" 1 "F" >/dev/null
IDS_SAVE=("${IDS[@]}")
IDS=('<bulk@t.test>' '<bulk-read@t.test>' '<in-seen@t.test>')
settings bulk "{\"host\": \"127.0.0.1\", \"port\": $PW2, \"tls\": \"none\", \"user\": \"$SEED\",
  \"password\": \"password\"}"
ic bulk
expect "SPECIAL-USE: the \\Junk folder named 'Bulk Mail' is found and searched" \
  test "$IC_RC" = 0 -a "$(got '<bulk@t.test>')" = "spam 0 0" -a "$(got '<bulk-read@t.test>')" = "spam 1 1" \
  -a "$(got '<in-seen@t.test>')" = "not_found 0 0"
expect "log: spam=\"Bulk Mail\" spam_from=special-use" grep -q 'spam="Bulk Mail" spam_from=special-use' "$ERR"
IDS=("${IDS_SAVE[@]}")
stop_dovecot "$WPID"
ok $? "second Dovecot stopped"

# --- a missing spam folder: the round fails, the connection stays -------------------
settings nospam "{\"host\": \"localhost\", \"port\": $P, \"tls\": \"starttls\", \"user\": \"$SEED\",
  \"password\": \"password\", \"ca_file\": \"$CA\", \"spam\": \"Nope\"}"
ic nospam -n 2
expect "spam folder 'Nope' does not exist: rc=-1 'EXAMINE \"Nope\" failed' with Dovecot's reason" \
  test "$(grep -c '^round [12] rc=-1 .*error=EXAMINE "Nope" failed: .*Mailbox doesn.t exist' "$OUT")" = 2
eq "a server NO keeps the connection (one connect for 2 rounds)" "$(connects)" 1

# --- strict settings -------------------------------------------------------------------
# name JSON expected-message-part
while IFS='|' read -r name json want; do
  [ -n "$name" ] || continue
  settings "bad-$name" "$json"
  ic "bad-$name"
  expect "settings: $name -> create fails naming it" \
    bash -c "[ $IC_RC = 2 ] && grep -qF -- \"create failed: imap settings: $want\" '$OUT'"
done <<EOF
unknown field|{"host": "h", "user": "u", "password": "p", "hostname": "x"}|unknown field 'hostname'
port as a string|{"host": "h", "user": "u", "password": "p", "port": "993"}|field 'port' must be an integer
port out of range|{"host": "h", "user": "u", "password": "p", "port": 70000}|field 'port' must be an integer between 1 and 65535
tls unknown|{"host": "h", "user": "u", "password": "p", "tls": "ssl"}|field 'tls' must be
host missing|{"user": "u", "password": "p"}|field 'host' is required
user not a string|{"host": "h", "user": 7, "password": "p"}|field 'user' must be a string
no password|{"host": "h", "user": "u"}|exactly one of the fields 'password' and 'password_file'
both passwords|{"host": "h", "user": "u", "password": "p", "password_file": "/x"}|exactly one of the fields 'password' and 'password_file'
password_file missing|{"host": "h", "user": "u", "password_file": "$TMP/nope"}|field 'password_file': cannot open
ca_file missing|{"host": "h", "user": "u", "password": "p", "ca_file": "$TMP/nope.pem"}|field 'ca_file': cannot load
ca_file with tls none|{"host": "h", "user": "u", "password": "p", "tls": "none", "ca_file": "$CA"}|field 'ca_file' needs tls
tls none to another host|{"host": "mail.example.invalid", "user": "u", "password": "p", "tls": "none"}|field 'tls':
tls none to a v4-mapped address|{"host": "::ffff:10.0.0.1", "user": "u", "password": "p", "tls": "none"}|field 'tls':
empty spam|{"host": "h", "user": "u", "password": "p", "spam": ""}|field 'spam' must not be empty
timeout_ms 0|{"host": "h", "user": "u", "password": "p", "timeout_ms": 0}|field 'timeout_ms' must be an integer
settings null|null|settings must be an object
settings an array|[1]|settings must be an object
EOF
# LOGIN would carry the password in clear text off the machine
settings cleartext '{"host": "mail.example.invalid", "user": "u", "password": "pw-67890", "tls": "none"}'
ic cleartext
cleartext_refused() { [ "$IC_RC" = 2 ] && ! grep -q pw-67890 "$OUT" "$ERR" &&
  grep -qF "field 'tls': \"none\" would send the password in clear text to 'mail.example.invalid', which is not a loopback host" "$OUT"; }
expect "tls none with a password to another host: refused, naming the host, not the password" cleartext_refused
settings badpw '{"host": "h", "user": "u", "password": 12345}'
ic badpw
expect "a password of the wrong type is refused without echoing it" \
  bash -c "grep -q \"field 'password' must be a string\" '$OUT' && ! grep -q 12345 '$OUT' '$ERR'"

# --- misbehaving servers: no STARTTLS, silence --------------------------------------
cat >"$TMP/fakeimap.py" <<'PY'
# fake IMAP server: "nostarttls" greets and answers CAPABILITY without
# STARTTLS, logs every command to LOG; "silent" accepts and says nothing
import socket, sys, time
mode, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(8)
open(log, "a").write("ready\n")
while True:
    c, _ = s.accept()
    if mode == "silent":
        time.sleep(30); c.close(); continue
    f = c.makefile("rb")
    c.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n")
    for line in f:
        open(log, "a").write("C: " + line.decode("latin-1"))
        tag, _, rest = line.decode("latin-1").strip().partition(" ")
        cmd = rest.split(" ")[0].upper()
        if cmd == "CAPABILITY":
            c.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag.encode() + b" OK done\r\n")
        elif cmd == "LOGOUT":
            c.sendall(b"* BYE bye\r\n" + tag.encode() + b" OK done\r\n"); break
        else:
            c.sendall(tag.encode() + b" NO not here\r\n")
    c.close()
PY
PF=$(freeport)
"$PY" "$TMP/fakeimap.py" nostarttls "$PF" "$TMP/fake1.log" </dev/null >/dev/null 2>&1 &
FPID=$!
track $FPID
wait_for 10 grep -q ready "$TMP/fake1.log"
settings nostarttls "{\"host\": \"127.0.0.1\", \"port\": $PF, \"tls\": \"starttls\", \"user\": \"$SEED\",
  \"password\": \"password\", \"ca_file\": \"$CA\"}"
ic nostarttls
expect "tls=starttls, server without STARTTLS: rc=-1 'does not offer STARTTLS'" \
  grep -q '^round 1 rc=-1 .*error=server 127.0.0.1:[0-9]* does not offer STARTTLS' "$OUT"
check "... and no LOGIN was sent (fake server's command log)" -- bash -c "! grep -qi ' LOGIN ' '$TMP/fake1.log'"
stop_pid $FPID

PQ=$(freeport)
"$PY" "$TMP/fakeimap.py" silent "$PQ" "$TMP/fake2.log" </dev/null >/dev/null 2>&1 &
FPID=$!
track $FPID
wait_for 10 grep -q ready "$TMP/fake2.log"
settings silent "{\"host\": \"127.0.0.1\", \"port\": $PQ, \"tls\": \"none\", \"user\": \"$SEED\",
  \"password\": \"password\", \"timeout_ms\": 1000}"
ic silent
expect "a server that never greets: rc=-1 'connection lost or timed out' after ~1 s (timeout_ms 1000; took $IC_MS ms)" \
  bash -c "grep -q '^round 1 rc=-1 .*error=greeting from 127.0.0.1:[0-9]* failed: connection lost or timed out' '$OUT' && [ $IC_MS -ge 900 ] && [ $IC_MS -lt 4000 ]"
settings silenttls "{\"host\": \"127.0.0.1\", \"port\": $PQ, \"user\": \"$SEED\",
  \"password\": \"password\", \"timeout_ms\": 1000, \"ca_file\": \"$CA\"}"
ic silenttls
expect "implicit TLS to a silent server: handshake bounded (rc=-1 'TLS handshake ... failed'; took $IC_MS ms)" \
  bash -c "grep -q '^round 1 rc=-1 .*error=TLS handshake with 127.0.0.1:[0-9]* failed' '$OUT' && [ $IC_MS -lt 4000 ]"
stop_pid $FPID

# --- backoff --------------------------------------------------------------------------
PX=$(freeport) # nothing listens there
settings refused "{\"host\": \"127.0.0.1\", \"port\": $PX, \"tls\": \"none\", \"user\": \"$SEED\",
  \"password\": \"password\"}"
# rounds at t=0, 0.3, 2.0 (after the 1 s backoff), 2.3 (inside the 2 s one)
(echo; sleep 0.3; echo; sleep 1.7; echo; sleep 0.3; echo) |
  env LOG_LEVEL=info "$IC" -s "$TMP/refused.json" '<in-seen@t.test>' >"$OUT" 2>"$ERR"
{ echo "## imap_check refused -s"; cat "$OUT" "$ERR"; } >>"$ALLERR"
rounds=$(grep '^round' "$OUT" | sed 's/ ms=[0-9]*//')
expect "backoff: refused, then 'reconnecting in 1 s', refused again, then 'reconnecting in 2 s'" \
  bash -c "printf '%s\n' \"\$1\" | grep -q 'round 1 rc=-1 error=connect to 127.0.0.1:$PX failed: Connection refused' &&
    printf '%s\n' \"\$1\" | grep -q 'round 2 rc=-1 error=reconnecting in 1 s (last error: connect to' &&
    printf '%s\n' \"\$1\" | grep -q 'round 3 rc=-1 error=connect to 127.0.0.1:$PX failed' &&
    printf '%s\n' \"\$1\" | grep -q 'round 4 rc=-1 error=reconnecting in 2 s'" _ "$rounds"
expect "a round inside the backoff window returns at once (< 50 ms)" \
  test "$(grep '^round 2 ' "$OUT" | sed 's/.* ms=\([0-9]*\).*/\1/')" -lt 50

# --- Dovecot stopped mid-run, then restarted ------------------------------------------
coproc ICP { env LOG_LEVEL=info "$IC" -s "$TMP/starttls.json" "${IDS[@]}" 2>"$TMP/restart.err"; }
track $ICP_PID
ICIN=${ICP[1]}
ICOUT=${ICP[0]}
# step - run one round in the running imap_check; its lines in STEP
step() {
  local line
  STEP=""
  echo go >&"$ICIN"
  while IFS= read -r -t 30 -u "$ICOUT" line; do
    STEP+="$line"$'\n'
    [[ $line == round* ]] && return 0
  done
  return 1
}
step
expect "restart: round 1 with Dovecot up: rc=0" grep -q '^round 1 rc=0 ' <<<"$STEP"
stop_dovecot "$DPID"
ok $? "Dovecot stopped while the loop holds its connection"
step
expect "Dovecot down: the next round returns -1" grep -q '^round 2 rc=-1 .*error=connect to localhost:[0-9]* failed: Connection refused' <<<"$STEP"
eq "Dovecot down: every copy unknown" "$(grep -c ' unknown 0 0$' <<<"$STEP")" "${#IDS[@]}"
start_dovecot "$DC" "$P" "$PS" "$TMP/certs"
ok $? "Dovecot started again on the same ports and Maildir"
DPID=$DOVECOT_PID
back=0
for i in $(seq 40); do
  step || break
  if grep -q '^round [0-9]* rc=0 ' <<<"$STEP"; then back=1; break; fi
  sleep 0.25
done
ok $((1 - back)) "a later round succeeds again (reconnected after the backoff)"
printf '%s' "$STEP" >"$OUT"
expect "after the reconnect: every answer as expected" all_expected
exec {ICIN}>&-
wait "$ICP_PID"
ICP_RC=$?
cat "$TMP/restart.err" >>"$ALLERR"
eq "imap_check ran on after the outage (exit 1 for the failed rounds, no signal)" "$ICP_RC" 1
eq "two connections in all: the first one and the reconnect" \
  "$(grep -c 'imap loop connected' "$TMP/restart.err")" 2
expect "the lost connection was logged with the domain" \
  grep -q 'imap loop disconnected domain=gmail.test .*reason=' "$TMP/restart.err"

stop_dovecot "$DPID"
ok $? "Dovecot stopped"
check "no password in any imap_check output" -- bash -c "! grep -q '$WRONGPW' '$ALLERR'"
check "no sanitizer report from any imap_check run" -- \
  bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$ALLERR'"
finish
