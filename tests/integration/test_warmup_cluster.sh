#!/bin/bash
# test_warmup_cluster.sh - three warmup-service instances on one throwaway
# PostgreSQL database send two broadcasts to 20,000 recipients through Postfix's
# smtp-sink (DESIGN 9.6). Proves:
# - an SMTP client's TPM is shared: with three instances live a broadcast
#   through it goes at the client's rate (within 5 % over 60 s), not three
#   times it;
# - a pause sent to one instance stops every instance within a second and
#   a resume through another starts them again; a rate limit set through a
#   third holds on all;
# - a second broadcast, through an unpaced client, with one instance
#   killed with -9 twice (restarted in between): every
#   recipient gets the copy, the copies received twice are no more than the
#   copies the killed instance held leased when it died, the progress ends
#   exact (sent 20,000, nothing pending, failed or dead), and no lease is
#   left behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"

N=20000
TPM=15000 # the paced client's: 250 copies/s in all
sink() { local port=$1 dir=$2; shift 2
  mkdir -p "$dir"; chmod 777 "$dir"
  smtp-sink -u nobody -d "$dir/%M." "$@" "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
  SINK_PID=$!; track $SINK_PID
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; }
# got EID - one line per copy of email EID the sink received: its recipient
got() { $PY - "$TMP/sink" "$1" <<'PY'
import os, re, sys
d, eid = sys.argv[1], sys.argv[2]
for f in os.listdir(d):
    t = open(os.path.join(d, f), encoding="utf-8", errors="replace").read()
    if re.search(r"^Message-ID: <email-%s\." % eid, t, re.M):
        print(re.search(r"^X-Rcpt-Args: <(.*?)>", t, re.M).group(1))
PY
}
sent_db() { pg_sql cluster "SELECT n_sent FROM emails WHERE id = $1"; }
leased_by() { pg_sql cluster "SELECT count(*) FROM deliveries WHERE state = 1 AND lease_owner LIKE '%:$1:%'"; }
progress() { jget "$(curl -s "$1/emails/$2")" '"%d %d %d %d" % (j["progress"]["sent"], j["progress"]["failed"], j["progress"]["pending"], j["progress"]["dead"])'; }

start_pg "$TMP/pg" cluster; ok $? "a throwaway PostgreSQL" || { finish; exit 1; }
WARMUP_DATABASE_URL=$PG_URL
start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
SP=$(freeport); sink "$SP" "$TMP/sink"; ok $? "smtp-sink starts"
cat > "$TMP/clients.json" <<JSON
[{"name": "paced", "type": "CUSTOM", "host": "127.0.0.1", "port": $SP, "tls": "none", "tpm": $TPM, "connections": 4},
 {"name": "fast", "type": "CUSTOM", "host": "127.0.0.1", "port": $SP, "tls": "none", "connections": 4}]
JSON
ENV=(SMTP_CLIENTS_FILE="$TMP/clients.json" RETRY_BASE_MS=200 RETRY_MAX=3 MESSAGE_ID_DOMAIN=warmup.test LOG_LEVEL=info)
P1=$(freeport); P2=$(freeport); P3=$(freeport)
start_warmup w1 "$P1" "${ENV[@]}" && start_warmup w2 "$P2" "${ENV[@]}" &&
  start_warmup w3 "$P3" "${ENV[@]}"
ok $? "three instances start on one database"
W1=http://127.0.0.1:$P1; W2=http://127.0.0.1:$P2; W3=http://127.0.0.1:$P3
wait_for 15 bash -c "grep -q 'shared by 3 instances' $TMP/w1/out.log"
ok $? "each instance counts three live instances (heartbeats)"

$PY -c "print('name,email_id'); [print(f'User {i},user{i}@d{i%5}.test') for i in range($N)]" > "$TMP/users.csv"
r=$(curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/users.csv" "$W2/users/import")
eq "$N users imported through one instance" "$(jget "$r" 'j["imported"]')" "$N"
eq "every instance sees them" "$(jget "$(curl -s "$W3/users?limit=1&offset=$((N - 1))")" 'len(j)')" 1

# --- a broadcast through the paced client: its TPM is shared (60 s at 250/s)
r=$(http POST "$W1/send" '{"from":"noreply@sender.test","subject":"Paced {{name}}","body":"Hello {{name}}","smtp_client":"paced"}')
eq "POST /send (paced client) -> 202" "${r%% *}" 202
A=$(jget "${r#* }" 'j["email_id"]')
sleep 4
a=$(sent_db "$A"); t0=$(date +%s.%N); sleep 60; b=$(sent_db "$A"); t1=$(date +%s.%N)
rate=$($PY -c "print(round(($b - $a) / ($t1 - $t0), 1))")
echo "# $((b - a)) copies in $($PY -c "print(round($t1 - $t0, 2))") s: $rate/s (the client's TPM $TPM: $((TPM / 60))/s)"
check "three instances send at the client's TPM, within 5 % over 60 s" -- \
  $PY -c "import sys; sys.exit(0 if abs($rate - $TPM / 60) <= 0.05 * $TPM / 60 else 1)"
for w in w1 w2 w3; do
  check "$w sent part of it" -- grep -q "email_id=$A" "$TMP/$w/out.log"
done

# --- pause through w1: every instance stops within a second
r=$(http POST "$W1/emails/$A/pause"); eq "pause -> 200" "${r%% *}" 200
sleep 1.5
a=$(ls "$TMP/sink" | wc -l); sleep 3; b=$(ls "$TMP/sink" | wc -l)
eq "paused through one instance: nothing more arrives from any (1.5 s later)" "$((b - a))" 0
r=$(http POST "$W3/emails/$A/resume"); eq "resume through another -> 200" "${r%% *}" 200
wait_for 5 bash -c "[ \$(ls $TMP/sink | wc -l) -gt $b ]"
ok $? "resumed: copies flow again"
# a rate limit through w2 holds on all: 60/min = 1/s for 5 s
r=$(http POST "$W2/emails/$A/rate-limit" '{"tpm":60}'); eq "rate-limit through a third -> 200" "${r%% *}" 200
sleep 2
a=$(sent_db "$A"); sleep 5; b=$(sent_db "$A")
check "the rate limit holds on every instance (at most 1/s + a bucket each)" -- [ $((b - a)) -le 9 ]
r=$(http POST "$W1/emails/$A/pause"); eq "paused again (the rest of the test is another broadcast)" "${r%% *}" 200

# --- a broadcast through the fast client, w2 killed with -9 twice
r=$(http POST "$W3/send" '{"from":"noreply@sender.test","subject":"Fast {{name}}","body":"Hello {{name}}","smtp_client":"fast"}')
eq "POST /send (fast client) -> 202" "${r%% *}" 202
B=$(jget "${r#* }" 'j["email_id"]')
LEASED=0
kill_w2() {
  local pid=$w2_PID n
  kill -KILL "$pid"; wait "$pid" 2>/dev/null
  n=$(leased_by "$pid"); LEASED=$((LEASED + n))
  echo "# w2 (pid $pid) killed at $(sent_db "$B") sent, with $n copies leased"
}
wait_for 120 bash -c "[ \$(ls $TMP/sink | wc -l) -ge $((b + N * 2 / 5)) ]"
kill_w2
start_warmup w2 "$P2" "${ENV[@]}"; ok $? "w2 starts again"
wait_for 120 bash -c "[ \$(ls $TMP/sink | wc -l) -ge $((b + N * 7 / 10)) ]"
kill_w2
check "the killed instance held copies (the kills were mid-run)" -- [ "$LEASED" -gt 0 ]
wait_for 30 bash -c "grep -q 'released .* copies leased by an instance not seen' $TMP/w1/out.log $TMP/w3/out.log"
ok $? "a survivor released the dead instance's leases"

wait_for 180 bash -c "[ \"\$(curl -s $W1/emails/$B | $PY -c 'import json,sys; j=json.load(sys.stdin)[\"progress\"]; print(j[\"sent\"], j[\"pending\"])')\" = '$N 0' ]"
ok $? "the broadcast completes on the survivors"
eq "progress exact (sent failed pending dead)" "$(progress "$W3" "$B")" "$N 0 0 0"
sleep 1
got "$B" | sort > "$TMP/got"
eq "every recipient received the copy" "$(sort -u "$TMP/got" | wc -l)" "$N"
dups=$(( $(wc -l < "$TMP/got") - N ))
echo "# $dups copies received twice; the killed instance held $LEASED leased"
check "duplicates no more than the killed instance's leased copies" -- [ "$dups" -le "$LEASED" ]
eq "no lease left" "$(pg_sql cluster 'SELECT count(*) FROM deliveries WHERE state = 1')" 0
eq "copies in the database: one per recipient" "$(pg_sql cluster "SELECT count(*), count(DISTINCT recipient) FROM deliveries WHERE email_id = $B")" "$N|$N"

p1=$w1_PID p3=$w3_PID
for w in w1 w3; do stop_named "$w"; eq "$w stops cleanly" "$STOP_RC" 0; done
check "no sanitizer report" -- bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' $TMP/w*/out.log"
eq "a clean stop removes the instance's heartbeat" \
  "$(pg_sql cluster "SELECT count(*) FROM instances WHERE id LIKE '%:$p1:%' OR id LIKE '%:$p3:%'")" 0
stop_pg
finish
