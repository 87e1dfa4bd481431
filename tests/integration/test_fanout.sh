#!/bin/bash
# test_fanout.sh - /send answers before the copies exist and the fan-out
# makes them in the background, through the real service and Postfix
# smtp-sink: 202 fast with the exact recipients, the queue holds only the
# work ahead of the sender, progress adds up while fanning out, an address
# suppressed before its chunk gets nothing, SIGTERM and kill -9 mid-way
# resume at the cursor: every user one copy from the fan-out (the sink sees
# duplicates only of copies in flight at the kill).
. "$(dirname "$0")/lib.sh"

N=${FANOUT_USERS:-20000}
CHUNK=500
sink() { local port=$1 dir=$2; shift 2
  mkdir -p "$dir"; chmod 777 "$dir"
  smtp-sink -u nobody -d "$dir/%M." "$@" "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
  SINK_PID=$!; track $SINK_PID
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; }
rcpts() { find "$1" -type f -print0 | xargs -0 cat 2>/dev/null | sed -n 's/^X-Rcpt-Args: <\(.*\)>.*/\1/p'; }
# sql QUERY - one line from the service's database (a reader beside it: WAL)
DB="$TMP/warmup/warmup.db"
sql() { "$PY" -c 'import sqlite3,sys; c=sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True, timeout=10); print(*c.execute(sys.argv[2]).fetchone())' "$DB" "$1"; }
# TEST_DB=postgres: the service's PostgreSQL database (PG_PORT exported once it runs)
[ "${TEST_DB:-sqlite}" = postgres ] &&
  sql() { "$PG_BIN/psql" -X -q -At -F ' ' "postgres://postgres@127.0.0.1:$PG_PORT/w_warmup" -c "$1"; }
export DB PY; export -f sql
# prog ID - "sent failed pending dead suppressed status"
prog() { jget "$(curl -s "$W/emails/$1")" '" ".join(str(j["progress"][k]) for k in ("sent","failed","pending","dead","suppressed")) + " " + j["status"]'; }
sum() { local p; p=$(prog "$1"); set -- $p; echo $(($1 + $2 + $3 + $4 + $5)); }

SP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
sink "$SP" "$TMP/sink"; ok $? "smtp-sink starts"
# 4000 copies a minute per email... then unlimited: the fan-out runs while the sender is slow
ENV=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP SMTP_TLS=none WORKERS=4
     SEND_BATCH=16 MESSAGE_ID_DOMAIN=warmup.test FANOUT_CHUNK=$CHUNK LOG_LEVEL=info)
start_warmup warmup "$WP" "${ENV[@]}"; ok $? "warmup-service starts (FANOUT_CHUNK=$CHUNK)"
export PG_PORT="${PG_PORT-}" PG_BIN="${PG_BIN-}"

$PY -c "print('name,email_id'); [print(f'User {i},u{i}@d{i%7}.test') for i in range($N)]" > "$TMP/users.csv"
r=$(curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/users.csv" "$W/users/import")
eq "$N users imported" "$(jget "$r" 'j["imported"]')" "$N"
for u in u5@d5.test u6@d6.test u7@d0.test; do
  http POST "$W/suppressions" "{\"email_id\":\"$u\",\"reason\":\"manual\"}" >/dev/null
done
R=$((N - 3))

# --- /send: 202 at once, no copy yet beyond the first chunks
t0=$(date +%s%N)
r=$(http POST "$W/send" '{"from":"noreply@sender.test","subject":"Fan {{name}}","body":"Hi","tpm":6000}')
ms=$((($(date +%s%N) - t0) / 1000000))
eq "POST /send -> 202" "${r%% *}" 202
EID=$(jget "${r#* }" 'j["email_id"]')
eq "recipients: the $R users not suppressed" "$(jget "${r#* }" 'j["recipients"]')" "$R"
echo "# /send answered in $ms ms with $N users"
check "/send answers in under 1 s (sanitizer build)" -- test "$ms" -lt 1000
sleep 2
eq "progress adds up while fanning out" "$(sum "$EID")" "$R"
check "  ... running" -- bash -c "[ \"\$(curl -s $W/emails/$EID | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"status\"])')\" = running ]"
made=$(sql "SELECT count(*) FROM deliveries WHERE email_id = $EID")
ahead=$(sql "SELECT count(*) FROM deliveries WHERE email_id = $EID AND state IN (0, 1, 3)")
echo "# after 2 s: $made copies made, $ahead not sent yet"
check "the queue holds the work ahead of the sender, not every copy" -- test "$made" -lt "$R"
check "  ... at most 3 chunks unsent" -- test "$ahead" -le $((3 * CHUNK))

# --- an address suppressed before its chunk: no copy, counted
http POST "$W/suppressions" "{\"email_id\":\"u$((N - 1))@d$(((N - 1) % 7)).test\",\"reason\":\"manual\"}" >/dev/null
eq "suppressed before its chunk: counted in suppressed" "$(prog "$EID" | cut -d' ' -f5)" 1
eq "  ... progress still adds up" "$(sum "$EID")" "$R"

# --- unlimited again: the fan-out keeps pace with the sender
http POST "$W/emails/$EID/rate-limit" '{"tpm":0}' >/dev/null

# --- SIGTERM mid-way: a clean stop between chunks, resumed at the next start
wait_for 30 bash -c "[ \$(sql 'SELECT fan_cursor FROM emails WHERE id = $EID') -gt $((N / 4)) ]"
stop_named warmup; eq "SIGTERM mid fan-out: exit 0" "$STOP_RC" 0
cur=$(sql "SELECT fan_cursor || ' ' || fan_max FROM emails WHERE id = $EID")
echo "# stopped at cursor/max $cur"
check "  ... stopped mid fan-out" -- test "${cur% *}" -lt "${cur#* }"
start_warmup warmup "$WP" "${ENV[@]}"; ok $? "restarts"

# --- kill -9 mid-way
wait_for 60 bash -c "[ \$(sql 'SELECT fan_cursor FROM emails WHERE id = $EID') -gt $((N / 2)) ]"
kill -KILL "$warmup_PID"; wait "$warmup_PID" 2>/dev/null
cur=$(sql "SELECT fan_cursor || ' ' || fan_max FROM emails WHERE id = $EID")
inflight=$(sql "SELECT count(*) FROM deliveries WHERE email_id = $EID AND state = 1")
echo "# killed at cursor/max $cur with $inflight copies leased"
check "killed mid fan-out" -- test "${cur% *}" -lt "${cur#* }"
start_warmup warmup "$WP" "${ENV[@]}"; ok $? "restarts after kill -9"

# --- the end: every user exactly one copy from the fan-out
wait_for 180 bash -c "[ \"\$(curl -s $W/emails/$EID | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"sent\"] >= $R - 1)')\" = True ]"
ok $? "every copy sent"
p=$(prog "$EID")
eq "progress: sent $((R - 1)), suppressed 1, done" "$p" "$((R - 1)) 0 0 0 1 done"
eq "the fan-out made one copy per user, none twice" \
  "$(sql "SELECT count(*) || ' ' || count(DISTINCT user_id) FROM deliveries WHERE email_id = $EID")" "$((R - 1)) $((R - 1))"
wait_for 30 bash -c "[ \$(find $TMP/sink -type f | xargs cat | grep -c '^X-Rcpt-Args:') -ge $((R - 1)) ]"
rcpts "$TMP/sink" | sort > "$TMP/got"
sort -u "$TMP/got" > "$TMP/uniq"
$PY -c "[print(f'u{i}@d{i%7}.test') for i in range($N) if i not in (5, 6, 7, $N - 1)]" | sort > "$TMP/want"
check "every user not suppressed received the email" -- cmp -s "$TMP/uniq" "$TMP/want"
dups=$(($(wc -l < "$TMP/got") - $(wc -l < "$TMP/uniq")))
echo "# the sink saw $(wc -l < "$TMP/got") copies, $dups duplicates ($inflight leased at the kill)"
check "duplicates at most the copies leased at the kill" -- test "$dups" -le "$inflight"
check "nothing for the suppressed" -- bash -c "! grep -qE '^(u5@d5|u6@d6|u7@d0|u$((N - 1))@d$(((N - 1) % 7)))\\.test$' $TMP/got"

stop_named warmup; eq "warmup exits 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup
stop_pid "$SINK_PID"
finish
