#!/bin/bash
# test_campaign.sh - retries with growing delays on 4xx, pause that holds
# across a restart, the per-email rate limit, and kill -9 mid-broadcast,
# through the real Postfix smtp-sink and the dev broker.
. "$(dirname "$0")/lib.sh"

sink() { local port=$1 dir=$2; shift 2
  mkdir -p "$dir"; chmod 777 "$dir"
  smtp-sink -u nobody -d "$dir/%M." "$@" "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
  SINK_PID=$!; track $SINK_PID
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; }
# dbq SQL - a query on the warmup database (TEST_DB=postgres: its PostgreSQL database)
dbq() { if [ "${TEST_DB:-sqlite}" = postgres ]; then pg_sql w_warmup "$1"; else sqlite3 "$TMP/warmup/warmup.db" "$1"; fi; }
rcpts() { cat "$1"/* 2>/dev/null | sed -n 's/^X-Rcpt-Args: <\(.*\)>.*/\1/p'; }
sent() { curl -s "$W/emails/$1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["progress"]["sent"])'; }
sent_is() { [ "$(sent "$1")" = "$2" ]; }
status() { curl -s "$W/emails/$1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
import_users() { # N PREFIX
  $PY -c "import sys; print('name,email_id'); [print(f'U {i},$2{i}@c{i%5}.test') for i in range($1)]" > "$TMP/u.csv"
  curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/u.csv" "$W/users/import" >/dev/null; }

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
SP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
SMTP=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP SMTP_TLS=none WORKERS=4 RETRY_BASE_MS=300 RETRY_MAX=10 LOG_LEVEL=info)

# --- 4xx for a while, then accepting: retries with growing delays, all sent
sink "$SP" "$TMP/s1" -r RCPT; ok $? "smtp-sink answering 4xx to RCPT"
start_warmup warmup "$WP" "${SMTP[@]}"; ok $? "warmup-service starts"
import_users 20 r
E1=$(jget "$(curl -s -X POST -H 'Content-Type: application/json' -d '{"from":"n@s.test","subject":"retry","body":"b"}' "$W/send")" 'j["email_id"]')
sleep 3
check "copies are failed (retry scheduled) while the server says 4xx" -- bash -c "curl -s $W/emails/$E1 | grep -q '\"failed\":20'"
stop_pid "$SINK_PID"; sink "$SP" "$TMP/s1b"
wait_for 60 sent_is "$E1" 20; ok $? "every copy ends sent once the server accepts"
eq "each recipient received one copy" "$(rcpts "$TMP/s1b" | sort -u | wc -l) $(rcpts "$TMP/s1b" | wc -l)" "20 20"
# the delays between one copy's attempts grow
mid=$(grep -o 'retry email_id=[0-9]* message_id=[^ ]*' "$TMP/warmup/out.log" | head -1 | sed 's/.*message_id=//')
grep -F "message_id=$mid" "$TMP/warmup/out.log" | grep ' retry ' | cut -d' ' -f1 > "$TMP/times"
$PY - "$TMP/times" <<'PY'
import sys, datetime
t = [datetime.datetime.strptime(l.strip(), "%Y-%m-%dT%H:%M:%S.%fZ") for l in open(sys.argv[1])]
d = [(b - a).total_seconds() for a, b in zip(t, t[1:])]
print("# attempts:", len(t), "gaps:", ["%.2f" % x for x in d])
sys.exit(0 if len(d) >= 2 and all(y > x for x, y in zip(d, d[1:])) else 1)
PY
ok $? "the gaps between retries of one copy grow"
check "retries are counted" -- bash -c "curl -s $W/metrics | awk '\$1 ~ /^email_retries_total/ {s+=\$2} END {exit !(s >= 40)}'"

# --- pause mid-broadcast of 5000: stops within a second, holds across a restart
import_users 5000 p
r=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"from":"n@s.test","subject":"paused","body":"b","tpm":3000}' "$W/send")
E2=$(jget "$r" 'j["email_id"]')
wait_for 20 bash -c "[ \$(curl -s $W/emails/$E2 | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"sent\"])') -ge 50 ]"
r=$(http POST "$W/emails/$E2/pause" "")
eq "pause -> 200 paused" "${r%% *} $(jget "${r#* }" 'j["status"]')" "200 paused"
sleep 1; a=$(sent "$E2"); sleep 3; b=$(sent "$E2")
echo "# sent $a one second after pause, $b three seconds later"
eq "nothing is sent after the pause settled (1 s)" "$b" "$a"
check "the broadcast was cut short" -- test "$a" -lt 5000
stop_named warmup; eq "exits 0 while paused" "$STOP_RC" 0
start_warmup warmup "$WP" "${SMTP[@]}"; sleep 3
eq "still paused after a restart" "$(status "$E2") $(sent "$E2")" "paused $a"
r=$(http POST "$W/emails/$E2/rate-limit" '{"tpm":600000}'); eq "rate-limit -> 200" "${r%% *}" 200
r=$(http POST "$W/emails/$E2/resume" ""); eq "resume -> 200" "${r%% *}" 200
wait_for 120 sent_is "$E2" 5020; ok $? "resume completes the broadcast (5020 copies)"
dumped "$TMP/s1b" | awk -F'\t' '$2 == "paused" {print $1}' > "$TMP/paused"
eq "each paused-broadcast recipient got one copy" "$(sort -u "$TMP/paused" | wc -l) $(wc -l < "$TMP/paused")" "5020 5020"

# --- rate limit: tpm=600 measured over 30 s is within 10% of 10/s
r=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"from":"n@s.test","subject":"rate","body":"b","tpm":600}' "$W/send")
E3=$(jget "$r" 'j["email_id"]')
sleep 3; a=$(sent "$E3"); sleep 30; b=$(sent "$E3")
rate=$($PY -c "print(round(($b - $a) / 30, 2))")
echo "# tpm=600: $((b - a)) copies in 30 s = $rate/s"
check "measured rate within 10% of 10/s" -- $PY -c "import sys; sys.exit(0 if 9.0 <= $rate <= 11.0 else 1)"
http POST "$W/emails/$E3/pause" "" >/dev/null

# --- kill -9 during a broadcast of 5000: every recipient gets a copy
rm -f "$TMP"/s1b/*
r=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"from":"n@s.test","subject":"crash","body":"b"}' "$W/send")
E4=$(jget "$r" 'j["email_id"]')
wait_for 30 bash -c "[ \$(curl -s $W/emails/$E4 | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"sent\"])') -ge 500 ]"
kill -KILL "$warmup_PID"; wait "$warmup_PID" 2>/dev/null
leased=$(dbq 'SELECT count(*) FROM deliveries WHERE state = 1')
echo "# $leased copies leased at the kill"
before=$(dumped "$TMP/s1b" | awk -F'\t' '$2 == "crash"' | wc -l)
echo "# killed with $before copies received"
check "killed mid-broadcast" -- test "$before" -lt 5020
start_warmup warmup "$WP" "${SMTP[@]}"
wait_for 120 sent_is "$E4" 5020; ok $? "after kill -9 and restart the broadcast completes"
dumped "$TMP/s1b" | awk -F'\t' '$2 == "crash" {print $1}' > "$TMP/crash"
total=$(wc -l < "$TMP/crash"); uniq=$(sort -u "$TMP/crash" | wc -l)
echo "# copies $total, recipients $uniq, duplicates $((total - uniq))"
eq "every recipient has its copy" "$uniq" 5020
check "duplicates are at most the in-flight window (1024 + 512 + 32)" -- test $((total - uniq)) -le 1568
if [ "$leased" -gt 0 ]; then
  # PostgreSQL: the cluster thread releases a dead instance's leases
  grep -qE "released $leased copies leased by (a previous run|an instance not seen)" "$TMP/warmup/out.log"; ok $? "the $leased leases of the killed run were reclaimed at start"
fi

# --- SIGTERM mid-broadcast: exit 0, nothing left leased, no copy sent twice
rm -f "$TMP"/s1b/*
# at 100 copies/s (tpm 6000) the stop lands mid-broadcast however slow the
# poll is; unlimited again after the restart
r=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"from":"n@s.test","subject":"term","body":"b","tpm":6000}' "$W/send")
E5=$(jget "$r" 'j["email_id"]')
wait_for 30 bash -c "[ \$(curl -s $W/emails/$E5 | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"sent\"])') -ge 500 ]"
stop_named warmup; eq "SIGTERM mid-broadcast: exit 0" "$STOP_RC" 0
eq "SIGTERM mid-broadcast: no copy left leased" "$(dbq 'SELECT count(*) FROM deliveries WHERE state = 1')" 0
check "SIGTERM mid-broadcast: the broadcast was cut short" -- test "$(dbq "SELECT n_sent FROM emails WHERE id = $E5")" -lt 5020
start_warmup warmup "$WP" "${SMTP[@]}"
r=$(http POST "$W/emails/$E5/rate-limit" '{"tpm":0}'); eq "rate-limit 0 (none) -> 200" "${r%% *}" 200
wait_for 120 sent_is "$E5" 5020; ok $? "after the restart the broadcast completes"
dumped "$TMP/s1b" | awk -F'\t' '$2 == "term" {print $1}' > "$TMP/term"
eq "SIGTERM mid-broadcast: every recipient exactly one copy" "$(sort -u "$TMP/term" | wc -l) $(wc -l < "$TMP/term")" "5020 5020"

stop_named warmup; eq "warmup exits 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup
stop_pid "$SINK_PID"; stop_pid "$BROKER_PID"
finish
