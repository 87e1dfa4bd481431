#!/bin/bash
# test_badinput.sh - bad requests get the right 4xx and a JSON error, the
# service stays up, and nothing is written (no user row, no event).
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
WP=$(freeport); W=http://127.0.0.1:$WP
start_warmup warmup "$WP"; ok $? "warmup-service starts"
r=$(http POST "$W/register" '{"name":"Known","email_id":"known@example.com"}')
eq "baseline registration" "${r%% *}" 201

# bad STATUS CODE NAME METHOD PATH [BODY] [curl args...]
bad() {
  local want=$1 code=$2 name=$3 m=$4 p=$5 b=${6-}; shift 6 2>/dev/null || shift $#
  local r; r=$(http "$m" "$W$p" "$b" "$@")
  local st=${r%% *} body=${r#* }
  if [ "$st" = "$want" ] && [ "$(jget "$body" 'j["error"]["code"] if j["error"]["message"] else ""' 2>/dev/null)" = "$code" ]; then
    ok 0 "$name -> $want $code"
  else
    ok 1 "$name -> $want $code"; echo "#   got $st: $body"
  fi
}
long=$(printf 'a%.0s' $(seq 300))
deep=$(printf '[%.0s' $(seq 40))$(printf ']%.0s' $(seq 40))
bad 400 invalid_json  "malformed JSON"            POST /register '{"name":'
bad 400 invalid_json  "not JSON at all"           POST /register 'hello'
bad 400 invalid_json  "JSON array"                POST /register '[]'
bad 400 invalid_json  "JSON string"               POST /register '"x"'
bad 400 invalid_json  "empty body"                POST /register ''  -H 'Content-Type: application/json'
bad 400 invalid_json  "trailing garbage"          POST /register '{"name":"a","email_id":"a@b.com"} x'
bad 400 invalid_json  "single quotes"             POST /register "{'name':'a','email_id':'a@b.com'}"
bad 400 invalid_json  "nesting too deep"          POST /register "{\"name\":$deep}"
bad 400 invalid_json  "invalid UTF-8"             POST /register $'{"name":"\xff\xfe","email_id":"u@b.com"}'
bad 400 invalid_field "name is a number"          POST /register '{"name":5,"email_id":"a@b.com"}'
bad 400 invalid_field "email_id is a number"      POST /register '{"name":"a","email_id":5}'
bad 400 invalid_field "email_id is an array"      POST /register '{"name":"a","email_id":["a@b.com"]}'
bad 400 invalid_field "name is null"              POST /register '{"name":null,"email_id":"a@b.com"}'
bad 400 invalid_field "name missing"              POST /register '{"email_id":"a@b.com"}'
bad 400 invalid_field "email_id missing"          POST /register '{"name":"a"}'
bad 400 invalid_field "empty name"                POST /register '{"name":"","email_id":"a@b.com"}'
bad 400 invalid_field "name too long"             POST /register "{\"name\":\"$long\",\"email_id\":\"a@b.com\"}"
bad 400 invalid_field "CR/LF in name"             POST /register '{"name":"a\r\nBcc: x@y.com","email_id":"a@b.com"}'
bad 400 invalid_field "CR/LF in email_id"         POST /register '{"name":"a","email_id":"a@b.com\r\nBcc: x@y.com"}'
bad 400 invalid_field "address without @"         POST /register '{"name":"a","email_id":"not-an-address"}'
bad 400 invalid_field "address with two @"        POST /register '{"name":"a","email_id":"a@b@c.com"}'
bad 400 invalid_field "address too long"          POST /register "{\"name\":\"a\",\"email_id\":\"$long@b.com\"}"
bad 400 invalid_field "display name form"         POST /register '{"name":"a","email_id":"A <a@b.com>"}'
bad 400 invalid_field "unknown field"             POST /register '{"name":"a","email_id":"a@b.com","admin":true}'
head -c 2000000 /dev/zero | tr '\0' ' ' > "$TMP/huge.json"
bad 413 payload_too_large "2 MB body"             POST /register '' -H 'Content-Type: application/json' --data-binary @"$TMP/huge.json"
bad 415 unsupported_media_type "text/plain body"  POST /register '{"name":"a","email_id":"a@b.com"}' -H 'Content-Type: text/plain'
bad 409 already_registered "duplicate"            POST /register '{"name":"K","email_id":"known@example.com"}'
bad 409 already_registered "duplicate, domain case" POST /register '{"name":"K","email_id":"known@EXAMPLE.com"}'
bad 405 method_not_allowed "GET /register"        GET /register
bad 405 method_not_allowed "DELETE /users"        DELETE /users
bad 404 not_found     "unknown path"              GET /nope
bad 404 not_found     "unknown nested path"       POST /register/extra '{}'
bad 400 invalid_query "limit not a number"        GET '/users?limit=abc'
bad 400 invalid_query "limit zero"                GET '/users?limit=0'
bad 400 invalid_query "limit too large"           GET '/users?limit=100000'
bad 400 invalid_query "negative offset"           GET '/users?offset=-1'
bad 400 invalid_csv   "CSV with a wrong header"   POST /users/import 'email,name' -H 'Content-Type: text/csv'
bad 400 invalid_csv   "CSV with broken quoting in the header" POST /users/import '"name,email_id' -H 'Content-Type: text/csv'
bad 400 invalid_csv   "empty CSV"                 POST /users/import '' -H 'Content-Type: text/csv'
bad 415 unsupported_media_type "CSV sent as JSON" POST /users/import 'name,email_id' -H 'Content-Type: application/json'
r=$(http GET "$W/register" "")
check "405 carries Allow: POST" -- bash -c "curl -s -D - -o /dev/null $W/register | grep -qi '^Allow: POST'"

# a CSV whose rows are all bad: 200, every line reported, nothing written
printf 'name,email_id\n"unterminated,a@b.com\n' > "$TMP/q1.csv"
r=$(curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/q1.csv" "$W/users/import")
eq "unterminated quote reported on its line" "$(jget "$r" '[j["imported"], j["invalid"][0]["line"], "unterminated" in j["invalid"][0]["error"]]')" '[0, 2, true]'
printf 'name,email_id\nx"y,a@b.com\nA,a@b.com,extra\nB\n' > "$TMP/q2.csv"
r=$(curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/q2.csv" "$W/users/import")
eq "quote inside a field and wrong column counts" "$(jget "$r" '[j["imported"], [i["line"] for i in j["invalid"]]]')" '[0, [2, 3, 4]]'

# after all that: still up, nothing written
check "service still answers /healthz" -- curl -fsS "$W/healthz"
r=$(http GET "$W/users")
eq "no user row written by a bad request" "$(jget "${r#* }" 'len(j)')" 1
sleep 1
eq "exactly one event on Kafka" "$(kcat -b "$BROKERS" -C -t emailId-events -e -q -f '%s\n' 2>/dev/null | wc -l)" 1

# --- concurrent registrations are group-committed: each gets its own answer
# 300 requests from 48 clients at once, 100 addresses sent twice (in any
# order, often in the same commit), 100 once -> 200 x 201, 100 x 409
{ for i in $(seq 100); do echo "dup$i"; echo "dup$i"; echo "one$i"; done; } | shuf >"$TMP/conc.txt"
xargs -P 48 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' \
  -d '{"name":"C {}","email_id":"{}@conc.test"}' "$W/register" <"$TMP/conc.txt" | sort | uniq -c | awk '{print $2 ":" $1}' | tr '\n' ' ' >"$TMP/conc.codes"
eq "300 concurrent registrations: 200 created, 100 duplicates" "$(cat "$TMP/conc.codes")" "201:200 409:100 "
eq "exactly 200 users of conc.test stored" "$(curl -s "$W/emailIds" | $PY -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin) if e.endswith("@conc.test")))')" 200
conc_events() { kcat -b "$BROKERS" -C -t emailId-events -e -q -f '%s\n' 2>/dev/null | grep -c '@conc.test'; }
events_200() { [ "$(conc_events)" -ge 200 ]; }
wait_for 20 events_200
eq "... and their 200 distinct user.registered events on Kafka" \
  "$(kcat -b "$BROKERS" -C -t emailId-events -e -q -f '%s\n' 2>/dev/null | grep '@conc.test' | $PY -c 'import json,sys; print(len({json.loads(l)["email_id"] for l in sys.stdin}))')" 200
stop_named warmup; eq "warmup exits 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup

# --- SIGTERM in the middle of a burst of registrations: registrations wait
# for their commit without holding an HTTP thread (deferred replies); the
# service still stops cleanly, and every address answered 201 is stored
start_warmup burst "$WP"; ok $? "warmup-service starts again (burst)"
# 32 keep-alive clients register b<k>@burst.test until the server goes away
$PY - "$WP" "$TMP/burst.codes" <<'PY' &
import http.client, json, sys, threading
port, out = int(sys.argv[1]), open(sys.argv[2], "w", buffering=1)
lock = threading.Lock()
def client(t):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for k in range(t, 100000, 32):
        body = json.dumps({"name": "B %d" % k, "email_id": "b%d@burst.test" % k})
        try:
            c.request("POST", "/register", body, {"Content-Type": "application/json"})
            r = c.getresponse(); r.read()
        except Exception:
            return
        with lock:
            out.write("%d %d\n" % (k, r.status))
ts = [threading.Thread(target=client, args=(t,)) for t in range(32)]
for t in ts: t.start()
for t in ts: t.join()
PY
XP=$!
burst_started() { [ "$(grep -c ' 201$' "$TMP/burst.codes")" -ge 300 ]; }
wait_for 30 burst_started
ok $? "32 clients registering at full speed: 300 answered 201"
t0=$(date +%s%N)
stop_named burst
eq "SIGTERM during the burst: exits 0" "$STOP_RC" 0
check "... within 10 s" -- test $((($(date +%s%N) - t0) / 1000000)) -lt 10000
wait "$XP"
check "no sanitizer report (burst)" -- sanitizer_clean burst
grep ' 201$' "$TMP/burst.codes" | sed 's/ 201$//' | sort -u >"$TMP/burst.201"
echo "# $(wc -l <"$TMP/burst.201") answered 201 before the stop, $(grep -vc ' 201$' "$TMP/burst.codes") not"
# the same database: DB_PATH, or burst's PostgreSQL database with TEST_DB=postgres
BURST_URL=; [ "${TEST_DB:-sqlite}" = postgres ] && BURST_URL=$(pg_url w_burst)
WARMUP_DATABASE_URL=$BURST_URL start_warmup burst2 "$WP" DB_PATH="$TMP/burst/warmup.db"; ok $? "restarts on the same database"
curl -s "$W/emailIds" | $PY -c 'import json,sys; print("\n".join(sorted({e[1:].split("@")[0] for e in json.load(sys.stdin) if e.endswith("@burst.test")})))' |
  sort -u >"$TMP/burst.stored"
eq "every address answered 201 is stored (none lost)" "$(comm -23 "$TMP/burst.201" "$TMP/burst.stored" | wc -l)" 0
stop_named burst2

# --- authentication: API_TOKEN set
TP=$(freeport); TW=http://127.0.0.1:$TP
start_warmup tok "$TP" API_TOKEN=s3cret-token-value; ok $? "starts with API_TOKEN"
W=$TW
bad 401 unauthorized "missing token"              POST /register '{"name":"a","email_id":"t@b.com"}'
bad 401 unauthorized "wrong token"                POST /register '{"name":"a","email_id":"t@b.com"}' -H 'Authorization: Bearer wrong'
bad 401 unauthorized "token prefix"               POST /register '{"name":"a","email_id":"t@b.com"}' -H 'Authorization: Bearer s3cret'
bad 401 unauthorized "basic scheme"               GET /users '' -H 'Authorization: Basic czNjcmV0LXRva2VuLXZhbHVl'
r=$(http POST "$TW/register" '{"name":"a","email_id":"t@b.com"}' -H 'Authorization: Bearer s3cret-token-value')
eq "right token -> 201" "${r%% *}" 201
check "/healthz needs no token" -- curl -fsS "$TW/healthz"
check "/metrics needs no token" -- curl -fsS "$TW/metrics"
check "the token never appears in the log" -- bash -c "! grep -q s3cret-token-value $TMP/tok/out.log"
stop_named tok
echo s3cret-from-file > "$TMP/token"
start_warmup tokf "$TP" API_TOKEN_FILE="$TMP/token"; ok $? "starts with API_TOKEN_FILE"
r=$(http GET "$TW/users" "" -H 'Authorization: Bearer s3cret-from-file')
eq "API_TOKEN_FILE token accepted" "${r%% *}" 200
stop_named tokf

# --- a client that sends half a request is cut off after HTTP_TIMEOUT
start_warmup slow "$TP" HTTP_TIMEOUT=1; ok $? "starts with HTTP_TIMEOUT=1"
$PY - "$TP" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /register HTTP/1.1\r\nHost: x\r\n")   # never finished
s.settimeout(10)
t = time.time()
data = s.recv(100)
sys.exit(0 if data == b"" and time.time() - t < 5 else 1)
PY
ok $? "an unfinished request is closed after the connection timeout"
check "still serving after the slow client" -- curl -fsS "$TW/healthz"
stop_named slow

# --- start-up refusals: one clear line naming the variable
mkdir -p "$TMP/cfg"
env BIND_ADDR=0.0.0.0 PORT="$(freeport)" DB_PATH="$TMP/cfg/w.db" "$WARMUP_BIN" > "$TMP/cfg/bind.log" 2>&1
st=$?
check "non-loopback BIND_ADDR without API_TOKEN is refused" -- bash -c "[ $st != 0 ] && grep -q 'BIND_ADDR' $TMP/cfg/bind.log"
env PORT=abc DB_PATH="$TMP/cfg/w.db" "$WARMUP_BIN" > "$TMP/cfg/port.log" 2>&1
st=$?
check "PORT=abc is refused naming PORT" -- bash -c "[ $st != 0 ] && grep -q 'PORT' $TMP/cfg/port.log && [ \$(wc -l < $TMP/cfg/port.log) = 1 ]"
env LOG_FORMAT=xml "$WARMUP_BIN" > "$TMP/cfg/fmt.log" 2>&1
st=$?
check "LOG_FORMAT=xml is refused naming LOG_FORMAT" -- bash -c "[ $st != 0 ] && grep -q 'LOG_FORMAT' $TMP/cfg/fmt.log"
env API_TOKEN=x API_TOKEN_FILE="$TMP/token" "$WARMUP_BIN" > "$TMP/cfg/both.log" 2>&1
st=$?
check "API_TOKEN and API_TOKEN_FILE both set is refused" -- bash -c "[ $st != 0 ] && grep -q 'API_TOKEN' $TMP/cfg/both.log && ! grep -q s3cret $TMP/cfg/both.log"
env DB_FILES=3 PORT="$(freeport)" DB_PATH="$TMP/cfg/h.db" "$HEALTH_BIN" > "$TMP/cfg/files.log" 2>&1
st=$?
check "DB_FILES=3 is refused naming DB_FILES, before a store file is made" -- bash -c "[ $st != 0 ] && grep -q 'DB_FILES' $TMP/cfg/files.log && [ \$(wc -l < $TMP/cfg/files.log) = 1 ] && [ ! -e $TMP/cfg/h.db ]"
stop_pid "$BROKER_PID"
finish
