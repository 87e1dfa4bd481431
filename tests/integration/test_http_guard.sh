#!/bin/bash
# test_http_guard.sh - the browser and network defences of DESIGN section 4
# on both services: a body without Content-Type (415), a foreign Host (421,
# DNS rebinding), a cross-origin state-changing request (403, CSRF),
# ambiguous framing (400, request smuggling), slow clients dropped at their
# header and body deadlines, connections capped per client address, and a
# 503 near the global cap. Every refused request writes nothing.
. "$(dirname "$0")/lib.sh"
SLOW="$PY $SRC_DIR/tests/integration/slowclient.py"

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
WP=$(freeport); W=http://127.0.0.1:$WP
start_warmup warmup "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool" \
    HTTP_HEADER_TIMEOUT=2 HTTP_BODY_TIMEOUT=2
ok $? "warmup-service starts"
r=$(http POST "$W/register" '{"name":"Alice","email_id":"alice@example.com"}')
eq "a user to broadcast to" "${r%% *}" 201
SEND='{"from":"n@s.test","subject":"s","body":"b"}'
emails() { jget "$(curl -s "$W/emails")" 'len(j)'; }

# refused STATUS CODE NAME METHOD PATH BODY [curl args...]
refused() {
  local want=$1 code=$2 name=$3 m=$4 p=$5 b=$6; shift 6
  local r; r=$(http "$m" "$W$p" "$b" "$@")
  local st=${r%% *} body=${r#* }
  if [ "$st" = "$want" ] && [ "$(jget "$body" 'j["error"]["code"]' 2>/dev/null)" = "$code" ]; then
    ok 0 "$name -> $want $code"
  else
    ok 1 "$name -> $want $code"; echo "#   got $st: $body"
  fi
}

# --- 1. cross-site request forgery and DNS rebinding
refused 415 unsupported_media_type "POST /send without Content-Type (a Blob body)" \
    POST /send "$SEND" -H 'Content-Type:'
refused 415 unsupported_media_type "POST /emails/1/pause with a body and no Content-Type" \
    POST /emails/1/pause "x" -H 'Content-Type:'
refused 421 misdirected_request "POST /send with Host: evil.example" \
    POST /send "$SEND" -H 'Host: evil.example'
refused 421 misdirected_request "GET /users with Host: evil.example:$WP (rebinding)" \
    GET /users "" -H "Host: evil.example:$WP"
refused 421 misdirected_request "GET /healthz with Host: localhost.evil.example" \
    GET /healthz "" -H 'Host: localhost.evil.example'
refused 403 forbidden_origin "POST /send from Origin http://evil.example" \
    POST /send "$SEND" -H 'Origin: http://evil.example'
refused 403 forbidden_origin "POST /send from Origin null (sandboxed page)" \
    POST /send "$SEND" -H 'Origin: null'
refused 403 forbidden_origin "POST /send from another port of localhost" \
    POST /send "$SEND" -H "Origin: http://127.0.0.1:1"
refused 403 forbidden_origin "POST /register with Sec-Fetch-Site: cross-site" \
    POST /register '{"name":"M","email_id":"m@example.com"}' -H 'Sec-Fetch-Site: cross-site'
eq "no email was created by a refused request" "$(emails)" 0
eq "no user was created by a refused request" "$(jget "$(curl -s "$W/users")" 'len(j)')" 1
r=$(http GET "$W/users" "" -H "Host: localhost:$WP"); eq "Host: localhost is served" "${r%% *}" 200
r=$(http GET "$W/users" "" -H "Host: [::1]:$WP"); eq "Host: [::1] is served" "${r%% *}" 200
r=$(http GET "$W/users" "" -H 'Origin: http://evil.example'); eq "a GET from another origin is served (reads are not state changes)" "${r%% *}" 200
r=$(http POST "$W/send" "$SEND" -H "Origin: http://127.0.0.1:$WP")
eq "POST /send from its own origin is accepted" "${r%% *}" 202
eq "that one email exists" "$(emails)" 1

# --- request smuggling: ambiguous framing is refused and the connection closed
raw() { printf "$1" | $SLOW raw "$WP"; }
eq "HTTP/1.1 without Host -> 400" "$(raw 'GET /healthz HTTP/1.1\n\n')" 400
eq "HTTP/1.0 without Host is served" "$(raw 'GET /healthz HTTP/1.0\n\n')" 200
eq "two different Content-Length -> 400" \
   "$(raw 'POST /register HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\nContent-Length: 2\nContent-Length: 40\n\n{}')" 400
eq "space before the colon -> 400" \
   "$(raw 'POST /register HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\nContent-Length : 2\n\n{}')" 400
eq "Content-Length with Transfer-Encoding -> 400" \
   "$(raw 'POST /register HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\n\n')" 400
eq "two Host headers -> 400" "$(raw 'GET /healthz HTTP/1.1\nHost: 127.0.0.1\nHost: evil.example\n\n')" 400
eq "no user was created by the smuggling attempts" "$(jget "$(curl -s "$W/users")" 'len(j)')" 1

# --- 2. slow clients are dropped at their deadlines, the service is not
t=$($SLOW headers "$WP" 20)
check "a header line every 0.5 s is cut at HTTP_HEADER_TIMEOUT=2 (took ${t}s)" -- \
    $PY -c "import sys; sys.exit(0 if 1.5 <= $t < 6 else 1)"
t=$($SLOW body "$WP" 20)
check "one body byte every 0.5 s is cut at HTTP_BODY_TIMEOUT=2 (took ${t}s)" -- \
    $PY -c "import sys; sys.exit(0 if 1.5 <= $t < 6 else 1)"
check "metrics count the deadline drops" -- bash -c \
    "curl -s $W/metrics | grep -E 'http_connections_dropped_total\{reason=\"header_timeout\"\} [1-9]' && curl -s $W/metrics | grep -E 'http_connections_dropped_total\{reason=\"body_timeout\"\} [1-9]'"
check "metrics count the refused requests" -- bash -c \
    "curl -s $W/metrics | grep -E 'http_requests_refused_total\{reason=\"host\"\} [1-9]'"
stop_named warmup
eq "warmup-service exits 0" "$STOP_RC" 0
check "no sanitizer report (warmup)" -- sanitizer_clean warmup

# one address holding 1,100 slow connections: capped at its share, others served
start_warmup flood "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool" \
    HTTP_MAX_CONNECTIONS_PER_IP=100
ok $? "warmup-service starts (per-address cap 100)"
$SLOW flood "$WP" 1100 127.0.0.2 8 > "$TMP/flood.out" &
FLOOD=$!; track $FLOOD
wait_for 20 test -s "$TMP/flood.out"
held=$(head -1 "$TMP/flood.out")
check "127.0.0.2 holds at most 100 of its 1,100 connections (held $held)" -- test "${held:-999}" -le 100
t0=$(date +%s%N)
r=$(http GET "$W/users" "" --max-time 5)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
eq "another client is served during the flood" "${r%% *}" 200
check "  ... within 2 s (took ${ms} ms)" -- test "$ms" -lt 2000
wait "$FLOOD"
stop_named flood

# near the global cap new requests get a quick 503, and waiting connections are shed
start_warmup cap "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool" \
    HTTP_MAX_CONNECTIONS=64 HTTP_MAX_CONNECTIONS_PER_IP=64
ok $? "warmup-service starts (cap 64)"
$SLOW flood "$WP" 60 127.0.0.3 6 > "$TMP/cap.out" &
FLOOD=$!; track $FLOOD
wait_for 20 test -s "$TMP/cap.out"
r=$(http GET "$W/users" "" --max-time 5)
st=${r%% *}
check "a new request near the cap is answered at once (503 busy or 200 once shed; got $st)" -- \
    bash -c "[ '$st' = 503 ] || [ '$st' = 200 ]"
wait_for 5 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $W/users)\" = 200 ]"
ok $? "served again once the waiting connections were shed (well before their 10 s deadline)"
check "metrics count the busy drops" -- bash -c \
    "curl -s $W/metrics | grep -E 'http_connections_dropped_total\{reason=\"busy\"\} [1-9]'"
wait "$FLOOD"
stop_named cap
sanitizer_clean flood && sanitizer_clean cap; ok $? "no sanitizer report (flood, cap)"

# --- health-service: the same guard, and ALLOWED_HOSTS
HP=$(freeport); H=http://127.0.0.1:$HP
start_health health "$HP" ALLOWED_HOSTS="health.test,.mon.test"; ok $? "health-service starts with ALLOWED_HOSTS"
r=$(http GET "$H/domains" "" -H 'Host: evil.example'); eq "health: Host evil.example -> 421" "${r%% *}" 421
r=$(http GET "$H/domains" "" -H "Host: health.test:$HP"); eq "health: Host listed in ALLOWED_HOSTS is served" "${r%% *}" 200
r=$(http GET "$H/metrics" "" -H "Host: prom.mon.test"); eq "health: a subdomain of a '.mon.test' entry is served" "${r%% *}" 200
stop_named health
check "no sanitizer report (health)" -- sanitizer_clean health
env ALLOWED_HOSTS="http://x.example" PORT="$(freeport)" DB_PATH="$TMP/bad.db" "$HEALTH_BIN" > "$TMP/ah.log" 2>&1
st=$?
check "ALLOWED_HOSTS with a URL is refused naming the variable" -- bash -c "[ $st != 0 ] && grep -q ALLOWED_HOSTS $TMP/ah.log"
stop_pid "$BROKER_PID"
finish
