#!/bin/bash
# test_secrets.sh - secrets and credentials: secret variables leave the
# services' environment (/proc/PID/environ), every database file is 0600,
# credentials over an unencrypted connection to a non-loopback host stop
# start-up with one line naming the setting (SMTP, IMAP, Kafka), and the
# Kafka security settings reach the wire: SASL/PLAIN with the configured
# user and password, inside TLS verified against KAFKA_CA_FILE
# (kafka_sasl_peer.py plays the broker's front door).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
PEER_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka_sasl_peer.py"
umask 022 # what a service gets by default: files would be 0644 without the fix

TOKEN="tok-$RANDOM$RANDOM-w"
TOKEN_H="tok-$RANDOM$RANDOM-h"
SMTP_PW="smtp-pw-$RANDOM$RANDOM"
IMAP_PW="imap-pw-$RANDOM$RANDOM"
KAFKA_PW="kafka-pw-$RANDOM$RANDOM"
printf '%s\n' "$KAFKA_PW" > "$TMP/kafka-pw"
printf '%s\n' "$TOKEN_H" > "$TMP/token-h"

# env_lacks PID VALUE - VALUE is nowhere in the process's /proc/PID/environ
env_lacks() { [ -r "/proc/$1/environ" ] && ! grep -qaF -- "$2" "/proc/$1/environ"; }
# no_secret FILE - none of the test's secrets in FILE
no_secret() { ! grep -qaF -e "$TOKEN" -e "$TOKEN_H" -e "$SMTP_PW" -e "$IMAP_PW" -e "$KAFKA_PW" "$1"; }
# refused NAME BIN WANT [VAR=VALUE...] - the service exits non-zero at start-up;
# its output (in $TMP/NAME.out) ends with one line naming WANT, and holds no secret
refused() { local name=$1 bin=$2 want=$3 rc; shift 3
  mkdir -p "$TMP/$name"
  env PORT="$(freeport)" KAFKA_BROKERS="${BROKERS:-127.0.0.1:1}" DB_PATH="$TMP/$name/x.db" "$@" \
    timeout 30 "$bin" >"$TMP/$name.out" 2>&1 </dev/null
  rc=$?
  ok $(( rc == 0 || rc == 124 )) "$name: start-up refused (exit $rc)"
  eq "$name: one line names $want" "$(grep -cF -- "$want" "$TMP/$name.out")" 1
  tail -1 "$TMP/$name.out" | grep -qF -- "$want"; ok $? "$name: ... and it is the last line"
  check "$name: no secret in the output" -- no_secret "$TMP/$name.out"
  grep -F -- "$want" "$TMP/$name.out" | sed 's/^/#   /'
}

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }

# --- secrets leave the environment -------------------------------------------
WP=$(freeport); HP=$(freeport)
start_warmup warmup "$WP" API_TOKEN="$TOKEN" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM \
  SMTP_HOST=127.0.0.1 SMTP_PORT="$(freeport)" SMTP_TLS=none SMTP_USERNAME=u SMTP_PASSWORD="$SMTP_PW"
ok $? "warmup-service starts with API_TOKEN and SMTP AUTH over tls none to 127.0.0.1"
check "warmup: API_TOKEN's value is not in /proc/PID/environ" -- env_lacks "$warmup_PID" "$TOKEN"
check "warmup: SMTP_PASSWORD's value is not in /proc/PID/environ" -- env_lacks "$warmup_PID" "$SMTP_PW"
check "warmup: the variables themselves are gone" -- \
  bash -c "! tr '\0' '\n' </proc/$warmup_PID/environ | grep -qE '^(API_TOKEN|SMTP_PASSWORD)='"
check "warmup: other variables stay" -- grep -qa "SMTP_USERNAME=u" "/proc/$warmup_PID/environ"
eq "warmup: the token still guards the API (none -> 401)" "$(http GET "http://127.0.0.1:$WP/users" | cut -d' ' -f1)" 401
eq "warmup: the token still guards the API (token -> 200)" \
  "$(http GET "http://127.0.0.1:$WP/users" '' -H "Authorization: Bearer $TOKEN" | cut -d' ' -f1)" 200
start_health health "$HP" API_TOKEN_FILE="$TMP/token-h" DB_FILES=4
ok $? "health-service starts with API_TOKEN_FILE"
check "health: API_TOKEN_FILE's value gone from /proc/PID/environ" -- env_lacks "$health_PID" "$TMP/token-h"
eq "health: the token from the file guards the API" \
  "$(http GET "http://127.0.0.1:$HP/domains" '' -H "Authorization: Bearer $TOKEN_H" | cut -d' ' -f1)" 200

# --- database files are 0600 ---------------------------------------------------
# modes DIR - "mode name" of every database file (main, shards, -wal, -shm)
modes() { (cd "$1" && stat -c '%a %n' *.db*); }
wfiles=$(modes "$TMP/warmup"); hfiles=$(modes "$TMP/health")
echo "$wfiles $hfiles" | tr ' ' '\n' | paste - - | sed 's/^/# /'
check "warmup: warmup.db, -wal and -shm exist" -- bash -c "echo '$wfiles' | grep -q 'warmup.db-wal' && echo '$wfiles' | grep -q 'warmup.db-shm'"
eq "warmup: every database file is 0600" "$(echo "$wfiles" | grep -vc '^600 ')" 0
check "health: the store's four files (DB_FILES=4) and their -wal/-shm exist" -- \
  bash -c "[ \$(echo '$hfiles' | grep -c 'health.db') -ge 12 ] && echo '$hfiles' | grep -q 'health.db.shard3-wal'"
eq "health: every database file is 0600" "$(echo "$hfiles" | grep -vc '^600 ')" 0
stop_named warmup; eq "warmup exits 0" "$STOP_RC" 0
chmod 644 "$TMP/warmup/warmup.db"
start_warmup warmup "$WP"; ok $? "warmup restarts on a database left 0644"
eq "warmup: the 0644 database is made 0600" "$(stat -c %a "$TMP/warmup/warmup.db")" 600
check "warmup: ... with a warning naming the file" -- grep -q "warmup.db was open to group or others (mode 644): now 600" "$TMP/warmup/out.log"
stop_named warmup
stop_named health; eq "health exits 0" "$STOP_RC" 0
for s in warmup health; do check "$s: sanitizers quiet" -- sanitizer_clean "$s"; check "$s: no secret in its log" -- no_secret "$TMP/$s/out.log"; done

# --- credentials in clear text to another host are refused ---------------------
refused smtp-env "$WARMUP_BIN" SMTP_TLS CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM \
  SMTP_HOST=smtp.example.invalid SMTP_TLS=none SMTP_USERNAME=u SMTP_PASSWORD="$SMTP_PW"
check "smtp-env: refused before the database is created" -- test ! -e "$TMP/smtp-env/x.db"
printf '%s\n' "$SMTP_PW" > "$TMP/smtp-pw"
printf '[{"name":"relay","type":"CUSTOM","host":"smtp.example.invalid","tls":"none","username":"u","password_file":"%s"}]\n' \
  "$TMP/smtp-pw" > "$TMP/clients.json"
refused smtp-file "$WARMUP_BIN" "SMTP_CLIENTS_FILE[0] (relay): field 'tls'" SMTP_CLIENTS_FILE="$TMP/clients.json"
printf '{"example.invalid":{"loop":"imap","host":"imap.example.invalid","tls":"none","user":"seed","password":"%s"}}\n' \
  "$IMAP_PW" > "$TMP/loops.json"
refused imap "$HEALTH_BIN" "FEEDBACK_LOOPS_FILE: example.invalid: imap settings: field 'tls'" FEEDBACK_LOOPS_FILE="$TMP/loops.json"
check "imap: refused before the database is created" -- test ! -e "$TMP/imap/x.db"

# --- Kafka security settings ------------------------------------------------------
for s in warmup health; do
  bin=$WARMUP_BIN; [ $s = health ] && bin=$HEALTH_BIN
  refused "$s-kafka-bogus" "$bin" KAFKA_SECURITY_PROTOCOL KAFKA_SECURITY_PROTOCOL=bogus
  refused "$s-kafka-ca" "$bin" KAFKA_CA_FILE KAFKA_SECURITY_PROTOCOL=SSL KAFKA_CA_FILE="$TMP/no-such-ca.pem"
done
refused kafka-plain-remote "$WARMUP_BIN" KAFKA_SECURITY_PROTOCOL KAFKA_BROKERS=broker.example.invalid:9092 \
  KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT KAFKA_SASL_USERNAME=svc KAFKA_SASL_PASSWORD="$KAFKA_PW"
refused kafka-user-no-sasl "$HEALTH_BIN" KAFKA_SASL_USERNAME KAFKA_SASL_USERNAME=svc

# start_peer NAME [CERT KEY] - kafka_sasl_peer.py; sets PEER_PORT, PEER_RES
start_peer() { local name=$1; shift
  PEER_RES="$TMP/$name.res"; : > "$PEER_RES"
  $PY "$PEER_PY" "$TMP/$name.port" "$PEER_RES" svc "$TMP/kafka-pw" "$@" 2>"$TMP/$name.log" &
  track $!
  wait_for 10 test -s "$TMP/$name.port" || return 1
  PEER_PORT=$(cat "$TMP/$name.port")
}
sasl=(KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT KAFKA_SASL_MECHANISM=PLAIN KAFKA_SASL_USERNAME=svc KAFKA_SASL_PASSWORD_FILE="$TMP/kafka-pw")
for s in warmup health; do
  start_peer "peer-$s"; ok $? "$s: SASL peer listens"
  p=$(freeport)
  BROKERS="127.0.0.1:$PEER_PORT" start_svc "$([ $s = warmup ] && echo "$WARMUP_BIN" || echo "$HEALTH_BIN")" \
    "$s.db" "sasl_$s" "$p" "${sasl[@]}"
  ok $? "$s: starts with SASL_PLAINTEXT"
  wait_for 20 grep -q "mechanism=PLAIN user=svc password=ok tls=0" "$PEER_RES"
  ok $? "$s: librdkafka authenticates with SASL/PLAIN as svc with the configured password"
  grep -v 'password=ok' "$PEER_RES" | head -3 | sed 's/^/#   /'
  check "$s: start-up log names the security protocol, mechanism and user" -- \
    grep -q "kafka: security.protocol=sasl_plaintext sasl.mechanism=PLAIN sasl.username=svc" "$TMP/sasl_$s/out.log"
  eval "pid=\$sasl_${s}_PID"
  check "$s: KAFKA_SASL_PASSWORD_FILE's value gone from /proc/PID/environ" -- env_lacks "$pid" "$TMP/kafka-pw"
  stop_named "sasl_$s"; eq "$s: exits 0" "$STOP_RC" 0
  check "$s: no secret in its log" -- no_secret "$TMP/sasl_$s/out.log"
done

# TLS: the peer's certificate is checked against KAFKA_CA_FILE, host name included
gen_certs "$TMP/certs" || ok 1 "test certificates"
tls_case() { # NAME CERT CA WANT(auth|tls_error)
  local name=$1 cert=$2 ca=$3 want=$4
  start_peer "peer-$name" "$TMP/certs/$cert.pem" "$TMP/certs/$cert.key" || { ok 1 "$name: peer"; return; }
  BROKERS="127.0.0.1:$PEER_PORT" start_warmup "$name" "$(freeport)" KAFKA_SECURITY_PROTOCOL=SASL_SSL \
    KAFKA_SASL_USERNAME=svc KAFKA_SASL_PASSWORD="$KAFKA_PW" KAFKA_CA_FILE="$TMP/certs/$ca.pem"
  ok $? "$name: warmup starts with SASL_SSL"
  if [ "$want" = auth ]; then
    wait_for 20 grep -q "mechanism=PLAIN user=svc password=ok tls=1" "$PEER_RES"
    ok $? "$name: SASL/PLAIN inside TLS, certificate verified with KAFKA_CA_FILE"
  else
    wait_for 20 grep -q "tls_error=" "$PEER_RES"
    ok $? "$name: the TLS handshake fails"
    check "$name: ... and no password reaches the peer" -- bash -c "! grep -q mechanism= '$PEER_RES'"
  fi
  stop_named "$name"
  check "$name: no secret in its log" -- no_secret "$TMP/$name/out.log"
}
tls_case tls_good server ca auth
tls_case tls_other_ca server other-ca tls_error
tls_case tls_wrong_host wrong ca tls_error

finish
