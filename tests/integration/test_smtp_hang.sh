#!/bin/bash
# test_smtp_hang.sh - an SMTP server that stops answering (hang_smtpd.py:
# greeting and EHLO, then silence from MAIL FROM on). The client's circuit
# breaker opens at the first command timeout: outcomes within a few
# seconds instead of one timeout per copy,
# only the copies in flight charged an attempt, /readyz 503 naming the open
# breaker, the breaker in /metrics; once a working server (smtp-sink) takes
# the port, a probe closes it and every copy is sent exactly once. SIGTERM
# while a send hangs (a server that greets, then never answers EHLO): exit
# 0 within SHUTDOWN_GRACE_S plus a margin, and the copies in flight are
# released, then sent once after a restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
HANG_PY="$(cd "$(dirname "$0")" && pwd)/hang_smtpd.py"

# start_hang PORT LOG [--answer-ehlo] - hang_smtpd.py on 127.0.0.1:PORT; sets HANG_PID
start_hang() {
  local port=$1 log=$2
  shift 2
  : >"$log"
  "$PY" "$HANG_PY" "$port" "$log" "$@" </dev/null >"$log.err" 2>&1 &
  HANG_PID=$!
  track $HANG_PID
  wait_for 10 grep -qx ready "$log" || { echo "# hang_smtpd.py did not start"; cat "$log.err"; return 1; }
}
pfield() { curl -s "$W/emails/$1" | $PY -c "import json,sys; print(json.load(sys.stdin)['progress']['$2'])"; }
progress() { jget "$(curl -s "$W/emails/$1")" '"%d %d %d %d" % (j["progress"]["sent"], j["progress"]["failed"], j["progress"]["pending"], j["progress"]["dead"])'; }
failed_ge() { [ "$(pfield "$1" failed)" -ge "$2" ]; }
sent_is() { [ "$(pfield "$1" sent)" = "$2" ]; }
metric() { curl -s "$W/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
workers_idle() { [ "$(metric email_workers_active)" = 0 ]; }
# copies SUBJECT - "total distinct" recipients of the messages with SUBJECT in the sink
copies() { dumped "$TMP/sink" | awk -F'\t' -v s="$1" '$2 == s {print $1}' | sort | awk '{n++; if ($0 != p) u++; p = $0} END {print n + 0, u + 0}'; }
now_ms() { date +%s%3N; }
has() { printf '%s' "$1" | grep -q "$2"; }

N=40
WORKERS=4
start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
SP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
start_hang "$SP" "$TMP/hang1.log" --answer-ehlo; ok $? "a hanging SMTP server (greeting and EHLO, no reply to MAIL)"
SMTP=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_TLS=none WORKERS=$WORKERS
  RETRY_BASE_MS=200 RETRY_MAX=3 SMTP_CONNECT_TIMEOUT_MS=2000 SMTP_BREAKER_BACKOFF_MS=500
  SMTP_BREAKER_BACKOFF_MAX_MS=2000 MESSAGE_ID_DOMAIN=warmup.test LOG_LEVEL=info)
start_warmup warmup "$WP" "${SMTP[@]}" SMTP_PORT="$SP" SMTP_COMMAND_TIMEOUT_MS=2000
ok $? "warmup-service starts (command timeout 2 s)"
$PY -c "print('name,email_id'); [print(f'U {i},u{i}@h{i%4}.test') for i in range($N)]" >"$TMP/u.csv"
r=$(curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/u.csv" "$W/users/import")
eq "$N users imported" "$(jget "$r" 'j["imported"]')" "$N"

# --- the server hangs: the breaker opens at the first timeout; the probe
# (EHLO, MAIL FROM:<>) times out as well, so it stays open
t0=$(now_ms)
E1=$(jget "$(http POST "$W/send" '{"from":"n@s.test","subject":"hang 1","body":"b"}' | cut -d' ' -f2-)" 'j["email_id"]')
wait_for 60 failed_ge "$E1" 1
el=$(($(now_ms) - t0))
echo "# first outcome after $el ms; progress sent/failed/pending/dead $(progress "$E1")"
check "the first outcome (failed, retry scheduled) within 6 s, not one 2 s timeout per copy" -- test "$el" -lt 6000
wait_for 3 workers_idle; ok $? "every batch ended at its first timeout: no worker is still sending"
r=$(http GET "$W/readyz")
eq "/readyz is 503 at once" "${r%% *}" 503
check "the smtp check names the client and its open breaker with the reason" -- \
  has "${r#* }" '"smtp": *"custom: circuit open (timed out after 2000 ms'
eq "metrics: smtp_circuit_open is 1" "$(metric 'smtp_circuit_open{client="custom"}')" 1
check "metrics: the trip is counted" -- test "$(metric 'smtp_circuit_trips_total{client="custom"}')" -ge 1
# a few probe rounds (backoff 0.5-2 s, each probe waits 2 s for the EHLO reply)
sleep 6
read -r s1 f1 p1 d1 <<<"$(progress "$E1")"
echo "# after 6 s more: sent/failed/pending/dead $s1 $f1 $p1 $d1, $(grep -cx conn "$TMP/hang1.log") connections"
check "only the copies in flight were charged an attempt (failed <= WORKERS)" -- test "$f1" -le $WORKERS
check "no reconnection per copy: connections <= WORKERS + 4 probes" -- \
  test "$(grep -cx conn "$TMP/hang1.log")" -le $((WORKERS + 4))
eq "no copy sent, dead-lettered or lost while the server hangs" "$s1 $d1 $((f1 + p1))" "0 0 $N"
r=$(http GET "$W/readyz")
eq "/readyz stays 503 while the probes fail" "${r%% *}" 503
check "its smtp check still names the open breaker" -- has "${r#* }" 'custom: circuit open'
grep -q 'probe failed' "$TMP/warmup/out.log"; ok $? "the breaker probed the hanging server and stayed open"

# --- a working server takes the port: a probe closes the breaker, all sent once
stop_pid "$HANG_PID"
start_smtp_sink "$SP" "$TMP/sink" --dump; ok $? "smtp-sink replaces the hanging server"
wait_for 30 sent_is "$E1" "$N"; ok $? "the breaker closes after its probe and every copy is sent"
eq "progress sent/failed/pending/dead" "$(progress "$E1")" "$N 0 0 0"
eq "every recipient received exactly one copy" "$(copies 'hang 1')" "$N $N"
grep -q 'probe ok: circuit closed' "$TMP/warmup/out.log"; ok $? "the log says the probe closed the breaker"
wait_for 10 curl -fsS "$W/readyz"; ok $? "/readyz is 200 again"
eq "metrics: smtp_circuit_open is 0" "$(metric 'smtp_circuit_open{client="custom"}')" 0
stop_named warmup; eq "exits 0" "$STOP_RC" 0

# --- SIGTERM while a send hangs (60 s command timeout): exit 0 within the grace
SP2=$(freeport)
start_hang "$SP2" "$TMP/hang2.log"; ok $? "a second hanging server (greeting, no reply to EHLO)"
start_warmup warmup "$WP" "${SMTP[@]}" SMTP_PORT="$SP2" SMTP_COMMAND_TIMEOUT_MS=60000 SHUTDOWN_GRACE_S=2
ok $? "warmup-service restarts (command timeout 60 s, SHUTDOWN_GRACE_S=2)"
E2=$(jget "$(http POST "$W/send" '{"from":"n@s.test","subject":"hang 2","body":"b"}' | cut -d' ' -f2-)" 'j["email_id"]')
wait_for 10 grep -q '^cmd EHLO' "$TMP/hang2.log"; ok $? "a worker waits for the EHLO reply"
t0=$(now_ms)
stop_named warmup
el=$(($(now_ms) - t0))
echo "# exited $STOP_RC after $el ms"
eq "SIGTERM during the hang: exit 0" "$STOP_RC" 0
check "within the 2 s grace plus a 4 s margin" -- test "$el" -lt 6000
grep -q 'after the 2000 ms grace; cancelling' "$TMP/warmup/out.log"; ok $? "the log says the in-flight sends were cancelled"

# --- restart against the working server: the released copies are all sent once
stop_pid "$HANG_PID"
start_warmup warmup "$WP" "${SMTP[@]}" SMTP_PORT="$SP"; ok $? "warmup-service restarts against smtp-sink"
wait_for 30 sent_is "$E2" "$N"; ok $? "no copy lost: every copy of the interrupted email is sent"
eq "progress sent/failed/pending/dead" "$(progress "$E2")" "$N 0 0 0"
eq "every recipient received exactly one copy" "$(copies 'hang 2')" "$N $N"
eq "the first email was not sent again" "$(copies 'hang 1')" "$N $N"
check "the shutdown released its copies (no lease left for the next start)" -- \
  bash -c "! grep -q 'leased by a previous run' '$TMP/warmup/out.log'"
stop_named warmup; eq "exits 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup
stop_pid "$SINK_PID"; stop_pid "$BROKER_PID"
finish
