#!/bin/bash
# messages.sh - transactional latency: from POST /messages to SMTP acceptance
# (seed 004's queue target: p95 <= 100 ms; goal 20 ms), while a broadcast
# to N users runs on the same instance, side by side with the same
# messages on an idle instance (the reference).
#
# One warmup-service (release build, CUSTOM client, WORKERS=4, durable
# SQLite, Kafka events on the dev broker) sends to Postfix smtp-sink on
# loopback. M messages with priority high and M with priority normal,
# alternating, are posted at RATE per second over one keep-alive
# connection, first with nothing else to send, then once the broadcast
# (POST /send to all N users) has sent 2 % of its copies. A copy's SMTP
# acceptance time is its email.sent event's sent_at (stamped when the
# server's reply to its batch was read: an upper bound), read back from
# Kafka; latency = sent_at - the client's clock just before the POST.
#
#   N=200000   users in the broadcast (the issue's figure: N=1000000 M=200)
#   M=50       messages of each priority per phase
#   RATE=20    messages posted per second
#   TIMEOUT=600
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
: "${N:=200000}" "${M:=50}" "${RATE:=20}" "${TIMEOUT:=600}"
need smtp-sink kcat
need_bins broker warmup

machine_line
note "messages: N=$N M=$M RATE=$RATE/s; temp dir $BTMP"
start_broker
send_json >"$BTMP/send.json"
seed_users "$N"
note "imported $N users in $(fmt_s "$IMPORT_MS") s"

SP=$(freeport)
start_sink sink "$SP"
copy_db seed run
WP=$(freeport)
W_URL=http://127.0.0.1:$WP
start_warmup run "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" \
  SMTP_TLS=none MESSAGE_ID_DOMAIN=sender.bench.test
curl -fsS -H 'Content-Type: application/json' -d '{"name":"receipt","subject":"Your order {{order}}",
  "text":"Hello {{name}}, order {{order}} is confirmed.","from":"shop@sender.bench.test"}' \
  "$W_URL/templates" >/dev/null || die "POST /templates failed"

# post PHASE - M high and M normal messages at RATE/s; "t_ms priority message_id" lines
post() {
  $PY - "$W_URL" "$M" "$RATE" >"$BTMP/$1.posts" <<'PY' || die "posting messages failed"
import http.client, json, sys, time, urllib.parse
url, m, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
t_next = time.time()
for i in range(2 * m):
    prio = "high" if i % 2 == 0 else "normal"
    body = json.dumps({"to": f"buyer{i}@shop{i % 7}.bench.test", "template": "receipt",
                       "data": {"order": f"A-{i}"}, "priority": prio})
    time.sleep(max(0.0, t_next - time.time()))
    t0 = time.time()
    c.request("POST", "/messages", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    a = json.loads(r.read())
    if r.status != 202:
        sys.exit(f"POST /messages: {r.status} {a}")
    print(int(t0 * 1000), prio, a["message_id"])
    t_next += 1.0 / rate
PY
}
# messages_done N - the messages emails (kind messages) have N copies sent
messages_done() {
  [ "$(curl -s "$W_URL/emails?limit=1000" | jq '[.[] | select(.kind == "messages") | .progress.sent] | add')" -ge "$1" ]
}
# all_sent PHASE EVENTS - every message of PHASE has its email.sent in EVENTS
# (lines of email-events); their "message_id sent_at_ms" into $BTMP/PHASE.sent
all_sent() {
  awk '{ print $3 }' "$BTMP/$1.posts" >"$BTMP/$1.ids"
  grep -F -f "$BTMP/$1.ids" "$2" | $PY -c '
import json, sys, datetime
for line in sys.stdin:
    e = json.loads(line)
    if e.get("type") != "email.sent": continue
    t = datetime.datetime.strptime(e["sent_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    print(e["message_id"], int(t.timestamp() * 1000))' >"$BTMP/$1.sent"
  [ "$(sort -u "$BTMP/$1.sent" | wc -l)" -ge "$(wc -l <"$BTMP/$1.ids")" ]
}
# stats PHASE - "prio n p50 p95 p99 max" per priority, in ms
stats() {
  $PY - "$BTMP/$1.posts" "$BTMP/$1.sent" <<'PY'
import sys
sent = dict(l.split() for l in open(sys.argv[2]))
lat = {"high": [], "normal": []}
for l in open(sys.argv[1]):
    t, prio, mid = l.split()
    lat[prio].append(int(sent[mid]) - int(t))
def q(v, p): return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
for prio in ("high", "normal"):
    v = sorted(lat[prio])
    print(prio, len(v), q(v, .5), q(v, .95), q(v, .99), v[-1])
PY
}

# --- reference: the same messages on the idle instance
post idle
wait_for "$TIMEOUT" messages_done "$((2 * M))" || die "idle messages not all sent within $TIMEOUT s"
wait_for "$TIMEOUT" metric_is "$W_URL" outbox_pending 0 || die "the outbox did not drain"
kcat -b "$BROKERS" -C -t email-events -e -q -f '%s\n' >"$BTMP/idle.ev" 2>/dev/null
all_sent idle "$BTMP/idle.ev" || die "idle messages: an email.sent event is missing"
# the broadcast's events would push the messages' out of the dev broker's
# bounded log: keep those of the messages emails as they come
ids=$(curl -s "$W_URL/emails" | jq -r '[.[] | select(.kind == "messages") | .email_id] | join("|")')
kcat -b "$BROKERS" -C -t email-events -o end -u -q -f '%s\n' 2>/dev/null |
  grep --line-buffered -E "\"email_id\":($ids)," >"$BTMP/busy.ev" &
EV_PID=$!
track $EV_PID
sleep 2
stats idle >"$BTMP/idle.stats"

# --- during the broadcast
r=$(curl -s -H 'Content-Type: application/json' --data-binary @"$BTMP/send.json" "$W_URL/send")
BID=$(echo "$r" | jq -r .email_id)
[ "$(echo "$r" | jq -r .recipients)" = "$N" ] || die "POST /send answered $r"
sent_of() { curl -s "$W_URL/emails/$BID" | jq -r .progress.sent; }
wait_for "$TIMEOUT" bash -c "[ \$(curl -s $W_URL/emails/$BID | jq -r .progress.sent) -ge $((N / 50)) ]" ||
  die "the broadcast did not start"
b0=$(sent_of)
t0=$(now_ms)
post busy
wait_for "$TIMEOUT" messages_done "$((4 * M))" || die "messages during the broadcast not all sent within $TIMEOUT s"
b1=$(sent_of)
t1=$(now_ms)
wait_for "$TIMEOUT" all_sent busy "$BTMP/busy.ev" || die "busy messages: an email.sent event is missing"
stats busy >"$BTMP/busy.stats"
[ "$b1" -lt "$N" ] || note "WARNING: the broadcast ended before the last message was sent"
bulk_rate=$(fmt_rate "$((b1 - b0))" "$((t1 - t0))")
stop_named run

echo "transactional latency, POST /messages -> SMTP acceptance (email.sent sent_at), ms;"
echo "M=$M per priority at $RATE/s; broadcast N=$N, $bulk_rate copies/s while the messages went"
printf '%-26s %-7s %4s %6s %6s %6s %6s\n' phase priority n p50 p95 p99 max
while read -r prio n p50 p95 p99 max; do
  printf '%-26s %-7s %4s %6s %6s %6s %6s\n' "idle (reference)" "$prio" "$n" "$p50" "$p95" "$p99" "$max"
done <"$BTMP/idle.stats"
while read -r prio n p50 p95 p99 max; do
  printf '%-26s %-7s %4s %6s %6s %6s %6s\n' "during the broadcast" "$prio" "$n" "$p50" "$p95" "$p99" "$max"
done <"$BTMP/busy.stats"
p95=$(awk '$1 == "high" { print $4 }' "$BTMP/busy.stats")
summary "messages N=$N" "high p95 $p95 ms during the broadcast" "p95 <= 100 ms (goal 20)" \
  "$(verdict "$p95 <= 100") (goal 20: $(verdict "$p95 <= 20"))"
