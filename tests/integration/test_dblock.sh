#!/bin/bash
# test_dblock.sh - one process per SQLite database: a second warmup-service
# or health-service on the same DB_PATH exits at start-up with a clear line
# and touches nothing (it used to release the first one's in-flight copies
# and send them again); after the first is killed -9 the lock is free.
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
WP=$(freeport); W=http://127.0.0.1:$WP
# a sink that never answers DATA's end keeps copies in flight (leased)
SP=$(freeport)
$PY -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
conns = []
while True:
    c, _ = s.accept(); conns.append(c); c.sendall(b"220 hang ESMTP\r\n")
' "$SP" &
HANG_PID=$!; track $HANG_PID
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SP"
start_warmup first "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" SMTP_TLS=none
ok $? "first warmup-service starts"
http POST "$W/register" '{"name":"A","email_id":"a@example.com"}' >/dev/null
http POST "$W/send" '{"from":"n@s.test","subject":"s","body":"b"}' >/dev/null
wait_for 10 bash -c "sqlite3 $TMP/first/warmup.db 'select count(*) from deliveries where state = 1' | grep -qx 1"
ok $? "the copy is in flight (leased) at the hanging server"
before=$(sqlite3 "$TMP/first/warmup.db" "select state, count(*) from deliveries group by state" 2>/dev/null)
FIRST_LOCK_PID=$(cat "$TMP/first/warmup.db.lock")
eq "the lock file names the first process" "$FIRST_LOCK_PID" "$first_PID"
check "the lock file is 0600" -- test "$(stat -c %a "$TMP/first/warmup.db.lock")" = 600

P2=$(freeport)
env PORT="$P2" KAFKA_BROKERS="$BROKERS" DB_PATH="$TMP/first/warmup.db" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN \
    SMTP_SPOOL_DIR="$TMP/spool" timeout 20 "$WARMUP_BIN" > "$TMP/second.log" 2>&1
st=$?
check "a second warmup-service on the same DB_PATH exits non-zero (rc $st)" -- test "$st" != 0 -a "$st" != 124
check "  ... with one line naming DB_PATH and the first pid" -- \
    grep -q "DB_PATH .*in use by another process (pid $first_PID" "$TMP/second.log"
check "  ... before serving (its port never opened)" -- bash -c "! curl -s -m 1 http://127.0.0.1:$P2/healthz"
after=$(sqlite3 "$TMP/first/warmup.db" "select state, count(*) from deliveries group by state" 2>/dev/null)
eq "  ... and the copies' states are untouched" "$after" "$before"
check "the first one still serves" -- curl -fsS "$W/healthz"
check "no file was dumped by the refused process" -- bash -c "! ls $TMP/spool/* 2>/dev/null | grep -q ."

kill -KILL "$first_PID"; wait "$first_PID" 2>/dev/null
start_warmup third "$WP" DB_PATH="$TMP/first/warmup.db" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool"
ok $? "after kill -9 of the first, a new process takes the database"
stop_named third
eq "it exits 0" "$STOP_RC" 0

HP=$(freeport)
start_health health "$HP"; ok $? "health-service starts"
env PORT="$(freeport)" KAFKA_BROKERS="$BROKERS" DB_PATH="$TMP/health/health.db" timeout 20 "$HEALTH_BIN" > "$TMP/h2.log" 2>&1
st=$?
check "a second health-service on the same DB_PATH exits non-zero naming DB_PATH" -- \
    bash -c "[ $st != 0 ] && [ $st != 124 ] && grep -q 'DB_PATH .*in use by another process' $TMP/h2.log"
stop_named health
eq "health-service exits 0" "$STOP_RC" 0
check "no sanitizer report" -- bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' $TMP/*/out.log"
kill -KILL "$HANG_PID"; wait "$HANG_PID" 2>/dev/null
stop_pid "$BROKER_PID"
finish
