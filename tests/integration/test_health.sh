#!/bin/bash
# test_health.sh - the health service end to end: the warmup service sends
# through smtp-sink to users on three domains, the health service tracks
# every copy from Kafka and the mock feedback loop answers exactly what
# this test computes from the same hash; replayed and malformed events,
# and a restart. TEST_DB=postgres (test_health_pg.sh): the same checks with
# health-service on a throwaway PostgreSQL (DATABASE_URL), the SQLite
# schema migrations left out.
. "$(dirname "$0")/lib.sh"
if [ "${TEST_DB:-sqlite}" = postgres ]; then
  . "$(dirname "$0")/pg.sh"
  start_pg "$TMP/pg" health; ok $? "a throwaway PostgreSQL for health-service" || { finish; exit 1; }
  HEALTH_DATABASE_URL=$PG_URL
fi

sink() { local port=$1 dir=$2; shift 2
  mkdir -p "$dir"; chmod 777 "$dir"
  smtp-sink -u nobody "$@" "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
  SINK_PID=$!; track $SINK_PID
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; }
metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
SP=$(freeport); WP=$(freeport); HP=$(freeport)
W=http://127.0.0.1:$WP; H=http://127.0.0.1:$HP
sink "$SP" "$TMP/sink"
cat > "$TMP/loops.json" <<'JSON'
{"a.test": {"loop": "mock", "delivered": 0.6, "spam": 0.3, "opened": 0.5, "read": 0.5},
 "b.test": {"loop": "mock", "delivered": 0.9, "spam": 0.05, "opened": 0.7, "read": 0.3},
 "default": {"loop": "mock", "delivered": 0.5, "spam": 0.5, "opened": 1.0, "read": 1.0}}
JSON
start_warmup warmup "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP SMTP_TLS=none MESSAGE_ID_DOMAIN=w.test; ok $? "warmup-service starts"
start_health health "$HP" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json"; ok $? "health-service starts with FEEDBACK_LOOPS_FILE"

$PY -c 'd = "abc"; print("name,email_id"); [print(f"U{i},u{i}@{d[i % 3]}.test") for i in range(90)]' > "$TMP/u.csv"
curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/u.csv" "$W/users/import" >/dev/null
r=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"from":"n@w.test","subject":"s","body":"b"}' "$W/send")
E=$(jget "$r" 'j["email_id"]'); BID=$(jget "$r" 'j["message_id"]')
tracked() { [ "$(curl -s "$H/mail_stats?email_id=$E" | $PY -c 'import json,sys; print(json.load(sys.stdin).get("tracked"))' 2>/dev/null)" = "$1" ]; }
wait_for 60 tracked 90; ok $? "the broadcast is tracked: 90 copies"

# expected answers, from the email.sent events and the mock's formula
kcat -b "$BROKERS" -C -t email-events -e -q -f '%s\n' 2>/dev/null > "$TMP/sent.jsonl"
cat > "$TMP/expect.py" <<'PY'
import json, sys
rates = {"a.test": (0.6, 0.3, 0.5, 0.5), "b.test": (0.9, 0.05, 0.7, 0.3), "c.test": (0.5, 0.5, 1.0, 1.0)}
def fnv(s):
    h = 1469598103934665603
    for b in s.encode():
        h ^= b; h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h
def answer(mid, dom, rounds):
    d, sp, op, rd = rates[dom]; h = fnv(mid)
    u0, u16, u32 = (h & 0xffff) / 65536, ((h >> 16) & 0xffff) / 65536, ((h >> 32) & 0xffff) / 65536
    place = "inbox" if u0 < d else "spam" if u0 < d + sp else "none"
    opened = place == "inbox" and u16 < op and rounds >= 2
    read = opened and u32 < rd and rounds >= 3
    return place, opened, read
evs = [json.loads(l) for l in open(sys.argv[1]) if '"email.sent"' in l]
t = {"tracked": 0, "delivered": 0, "spam": 0, "opened": 0, "read": 0, "bounced": 0}
for e in evs:
    p, o, r = answer(e["message_id"], e["domain"], 3)
    t["tracked"] += 1; t["delivered"] += p == "inbox"; t["spam"] += p == "spam"; t["opened"] += o; t["read"] += r
t["pending"] = t["tracked"] - t["delivered"] - t["spam"]
if sys.argv[2:] == ["domains"]:   # per domain: delivered, spam, opened, read, bounced
    d = {}
    for e in evs:
        p, o, r = answer(e["message_id"], e["domain"], 3)
        c = d.setdefault(e["domain"], [0] * 5)
        c[0] += p == "inbox"; c[1] += p == "spam"; c[2] += o; c[3] += r
    print(json.dumps({k: d[k] for k in sorted(d)}))
elif len(sys.argv) > 2:   # one copy: print its expected stats
    e = [e for e in evs if e["message_id"] == sys.argv[2]][0]; p, o, r = answer(e["message_id"], e["domain"], 3)
    print(json.dumps([int(p == "inbox"), int(p == "spam"), int(o), int(r), e["recipient"], e["domain"]]))
else:
    print(json.dumps([t[k] for k in ("tracked", "delivered", "spam", "opened", "read", "bounced", "pending")]))
PY
want=$($PY "$TMP/expect.py" "$TMP/sent.jsonl")
echo "# expected after three rounds: $want"
got() { curl -s "$H/mail_stats?email_id=$E" | $PY -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps([j[k] for k in ("tracked","delivered","spam","opened","read","bounced","pending")]))'; }
stats_are() { [ "$(got)" = "$1" ]; }
wait_for 30 stats_are "$want"; ok $? "/mail_stats?email_id shows exactly the counts computed from the hash"
[ "$(got)" = "$want" ] || echo "#   got $(got)"
r=$(curl -s "$H/mail_stats?mail_id=$BID")
eq "/mail_stats by broadcast Message-ID" "$(jget "$r" '[j["email_id"], j["message_id"], j["tracked"], j["checked_at"] is not None]')" "[$E, \"$BID\", 90, true]"
eq "/mail_stats fields, in order; every copy has a loop: none unchecked or rescued" "$(jget "$r" '[list(j), j["unchecked"], j["rescued"]]')" \
  '[["email_id", "message_id", "tracked", "delivered", "spam", "opened", "read", "bounced", "complained", "unchecked", "rescued", "pending", "checked_at"], 0, 0]'
bare=${BID#<}; bare=${bare%>}
eq "angle brackets optional" "$(jget "$(curl -s "$H/mail_stats?mail_id=$bare")" 'j["tracked"]')" 90
eq "surrounding quotes optional" "$(jget "$(curl -s "$H/mail_stats?mail_id=%22$bare%22")" 'j["tracked"]')" 90
CID=$($PY -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "email.sent" in l][0]["message_id"])' "$TMP/sent.jsonl")
cbare=${CID#<}; cbare=${cbare%>}
r=$(curl -s "$H/mail_stats?mail_id=$cbare")
eq "a per-copy Message-ID answers for that copy" "$(jget "$r" '[j["tracked"], j["delivered"], j["spam"], j["opened"], j["read"], j["recipient"], j["domain"]]')" "$($PY "$TMP/expect.py" "$TMP/sent.jsonl" "$CID" | $PY -c 'import json,sys; a=json.load(sys.stdin); print(json.dumps([1]+a))')"
eq "a copy's fields" "$(jget "$r" 'list(j)')" \
  '["email_id", "message_id", "tracked", "delivered", "spam", "opened", "read", "bounced", "complained", "unchecked", "rescued", "pending", "checked_at", "recipient", "domain"]'
eq "unknown id -> 404" "$(curl -s -o /dev/null -w '%{http_code}' "$H/mail_stats?mail_id=nope@x.test")" 404
eq "unknown email_id -> 404" "$(curl -s -o /dev/null -w '%{http_code}' "$H/mail_stats?email_id=999999")" 404
eq "no id -> 400" "$(curl -s -o /dev/null -w '%{http_code}' "$H/mail_stats")" 400
eq "email_id not a number -> 400" "$(curl -s -o /dev/null -w '%{http_code}' "$H/mail_stats?email_id=x1")" 400
eq "mail_id without @ -> 400" "$(curl -s -o /dev/null -w '%{http_code}' "$H/mail_stats?mail_id=abc")" 400
r=$(curl -s "$H/all_mail_stats")
eq "/all_mail_stats is keyed by email_id" "$(jget "$r" '[list(j), j[list(j)[0]]["tracked"]]')" "[[\"$E\"], 90]"
eq "/all_mail_stats: the /mail_stats fields" "$(jget "$r" '[list(v) for v in j.values()]')" \
  '[["email_id", "message_id", "tracked", "delivered", "spam", "opened", "read", "bounced", "complained", "unchecked", "rescued", "pending", "checked_at"]]'
eq "/all_mail_stats?limit=0 -> 400" "$(curl -s -o /dev/null -w '%{http_code}' "$H/all_mail_stats?limit=0")" 400
r=$(curl -s "$H/domains")
eq "/domains: loop, users, tracked, checked per domain" "$(jget "$r" '[[d["domain"], d["loop"], d["users"], d["tracked"], d["checked"], d["last_round_at"] is not None] for d in j]')" '[["a.test", "mock", 30, 30, 30, true], ["b.test", "mock", 30, 30, 30, true], ["c.test", "mock", 30, 30, 30, true]]'
want_dom=$($PY "$TMP/expect.py" "$TMP/sent.jsonl" domains)
eq "/domains fields" "$(jget "$r" 'list(j[0])')" \
  '["domain", "users", "first_seen", "last_seen", "tracked", "checked", "last_round_at", "last_error", "delivered", "spam", "opened", "read", "bounced", "complained", "unchecked", "rescued", "loop"]'
eq "/domains: delivered, spam, opened, read, bounced per domain as computed" \
  "$(jget "$(curl -s "$H/domains")" '{d["domain"]: [d[k] for k in ("delivered", "spam", "opened", "read", "bounced")] for d in j}')" "$want_dom"
# placement_metric - {domain: [delivered, spam, opened, read, bounced]} from /metrics
placement_metric() { curl -s "$H/metrics" | $PY -c '
import json, re, sys
d = {}
for l in sys.stdin:
    m = re.match(r"health_placement_copies\{domain=\"([^\"]+)\",state=\"([a-z]+)\"\} (\S+)$", l.strip())
    if m:
        d.setdefault(m[1], {})[m[2]] = int(float(m[3]))
print(json.dumps({k: [d[k].get(s) for s in ("delivered", "spam", "opened", "read", "bounced")] for k in sorted(d)}))'; }
placement_is() { [ "$(placement_metric)" = "$1" ]; }
wait_for 10 placement_is "$want_dom"
ok $? "health_placement_copies{domain,state} says the same" || echo "#   got $(placement_metric)"

# --- replayed events change nothing
c0=$(metric "$H" health_events_consumed_total)
kcat -b "$BROKERS" -C -t email-events -e -q -K$'\t' -f '%k\t%s\n' 2>/dev/null > "$TMP/replay.tsv"
kcat -b "$BROKERS" -P -t email-events -K$'\t' < "$TMP/replay.tsv"
consumed_ge() { [ "$(metric "$H" health_events_consumed_total | cut -d. -f1)" -ge "$1" ]; }
wait_for 30 consumed_ge $(( ${c0%.*} + 90 )); ok $? "the 90 replayed events were consumed"
sleep 1.5
eq "replayed events do not change any count" "$(got)" "$want"

# --- 20 malformed events between valid ones: skipped, counted, valid ones processed
i0=$(metric "$H" health_events_invalid_total)
V='{"v":1,"type":"email.sent","broadcast_id":"<email-999@w.test>","email_id":999,"recipient":"x%d@c.test","domain":"c.test","smtp_client":"custom","sent_at":"2026-11-23T10:00:00.000Z","message_id":"<email-999.%d@w.test>"}'
{
  printf "k\t$V\n" 1 1
  printf 'k\t%s\n' '{not json' '[]' '"str"' '{}' '{"v":1}' '{"v":2,"type":"email.sent"}' '{"v":"1","type":"email.sent"}' \
    '{"v":1,"type":"email.bogus"}' '{"v":1,"type":"email.sent","message_id":5}' \
    '{"v":1,"type":"email.sent","message_id":"<a@b>","broadcast_id":"<c@d>","email_id":"7","recipient":"r@c.test","domain":"c.test","smtp_client":"x","sent_at":"2026-11-23T10:00:00Z"}' \
    '{"v":1,"type":"email.sent","message_id":"no-brackets","broadcast_id":"<c@d>","email_id":7,"recipient":"r@c.test","domain":"c.test","smtp_client":"x","sent_at":"2026-11-23T10:00:00Z"}' \
    '{"v":1,"type":"email.sent","message_id":"<a@b>","broadcast_id":"<c@d>","email_id":7,"recipient":"bad","domain":"c.test","smtp_client":"x","sent_at":"2026-11-23T10:00:00Z"}' \
    '{"v":1,"type":"email.sent","message_id":"<a@b>","broadcast_id":"<c@d>","email_id":7,"recipient":"r@c.test","domain":"other.test","smtp_client":"x","sent_at":"2026-11-23T10:00:00Z"}' \
    '{"v":1,"type":"email.sent","message_id":"<a@b>","broadcast_id":"<c@d>","email_id":7,"recipient":"r@c.test","domain":"c.test","smtp_client":"x","sent_at":"yesterday"}' \
    '{"v":1,"type":"email.sent","message_id":"<a@b>","broadcast_id":"<c@d>","email_id":0,"recipient":"r@c.test","domain":"c.test","smtp_client":"x","sent_at":"2026-11-23T10:00:00Z"}' \
    'null' '123' '{"v":1,"type":"email.sent"} trailing'
  printf "k\t$V\n" 2 2
  printf 'k\t{"v":1,"pad":"%s"}\n' "$(head -c 70000 /dev/zero | tr '\0' a)"
  printf 'k\t{"v":1,"type":"email.sent","message_id":"<\xff\xfe@x>"}\n'
  printf "k\t$V\n" 3 3
} > "$TMP/mixed.tsv"
kcat -b "$BROKERS" -P -t email-events -K$'\t' -X message.max.bytes=200000 < "$TMP/mixed.tsv"
printf 'k\t\n' | kcat -b "$BROKERS" -P -t email-events -K$'\t' -Z
invalid_is() { [ "$(metric "$H" health_events_invalid_total | cut -d. -f1)" = "$1" ]; }
wait_for 30 invalid_is $(( ${i0%.*} + 21 )); ok $? "21 malformed events (bad JSON, wrong types, missing fields, unknown version, huge, invalid UTF-8, empty) skipped and counted"
echo "# invalid counter: $(metric "$H" health_events_invalid_total)"
r=$(curl -s "$H/mail_stats?email_id=999")
eq "the valid events around them were processed" "$(jget "$r" 'j["tracked"]')" 3
grep -q 'event skipped topic=email-events partition=[0-9]* offset=[0-9]*' "$TMP/health/out.log"; ok $? "a skipped event is logged with topic, partition and offset"

# --- bounces: email.failed for a tracked copy, for a new copy, and replayed
F='{"v":1,"type":"email.failed","broadcast_id":"<email-999@w.test>","email_id":999,"recipient":"x%d@c.test","domain":"c.test","smtp_client":"custom","sent_at":"2026-11-23T10:00:01.000Z","message_id":"<email-999.%d@w.test>","smtp_reply":"550 5.1.1 no such user"}'
dom_c() { jget "$(curl -s "$H/domains")" '[[d["tracked"], d["bounced"]] for d in j if d["domain"] == "c.test"][0]'; }
dc0=$(dom_c)
{ printf "k\t$F\n" 1 1; printf "k\t$F\n" 4 4; } | kcat -b "$BROKERS" -P -t email-events -K$'\t'
b999() { jget "$(curl -s "$H/mail_stats?email_id=999")" '[j["tracked"], j["bounced"], j["pending"]]'; }
wait_for 30 bash -c "[ \"\$(curl -s '$H/mail_stats?email_id=999' | $PY -c 'import json,sys; j=json.load(sys.stdin); print(j[\"tracked\"], j[\"bounced\"])')\" = '4 2' ]"
ok $? "email.failed: a tracked copy bounces (bounced +1), a new failed copy is tracked and bounced"
eq "the copy's own stats say bounced" "$(jget "$(curl -s "$H/mail_stats?mail_id=email-999.1@w.test")" 'j["bounced"]')" 1
eq "/domains c.test: tracked +1, bounced +2" "$(dom_c)" "$(jget "$dc0" '[j[0] + 1, j[1] + 2]')"
c1=$(metric "$H" health_events_consumed_total)
{ printf "k\t$F\n" 1 1; printf "k\t$F\n" 4 4; } | kcat -b "$BROKERS" -P -t email-events -K$'\t'
wait_for 30 consumed_ge $(( ${c1%.*} + 2 )); sleep 0.5
eq "replayed email.failed events change nothing" "$(b999 | cut -d, -f1-2) $(dom_c)" "[4, 2 $(jget "$dc0" '[j[0] + 1, j[1] + 2]')"

# --- restart: stats and domains intact, nothing processed twice
before=$(got)
stop_named health; eq "health-service exits 0" "$STOP_RC" 0
start_health health "$HP" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json"
sleep 8
eq "stats intact after a restart" "$(got)" "$before"
eq "no event processed twice after the restart" "$(metric "$H" health_events_consumed_total)" 0
eq "domains intact" "$(jget "$(curl -s "$H/domains")" '[d["tracked"] for d in j]')" "[30, 30, 34]"

if [ "${TEST_DB:-sqlite}" = postgres ]; then
  check "the copies are in PostgreSQL" -- test "$(pg_sql health 'SELECT count(*) FROM copies')" -gt 0
  check "no SQLite file was made" -- test ! -e "$TMP/health/health.db"
  check "the log names the database without a password" -- grep -q "db=postgres://postgres@127.0.0.1:$PG_PORT/health" "$TMP/health/out.log"
  out=$(DATABASE_URL=mysql://x@127.0.0.1/db PORT=0 "$HEALTH_BIN" 2>&1 </dev/null); rc=$?
  check "a DATABASE_URL that is not postgres:// stops start-up, naming it" -- bash -c '[ "$1" != 0 ] && grep -q "DATABASE_URL: must be a postgres://" <<<"$2"' _ "$rc" "$out"
  out=$(DATABASE_URL="postgres://postgres:Sekr3t-77@127.0.0.1:$(freeport)/x" PORT=0 "$HEALTH_BIN" 2>&1 </dev/null); rc=$?
  check "an unreachable database stops start-up without printing the password" -- bash -c '[ "$1" != 0 ] && grep -q "DATABASE_URL: cannot connect" <<<"$2" && ! grep -q Sekr3t-77 <<<"$2"' _ "$rc" "$out"
  out=$(DATABASE_URL=$PG_URL PORT=0 DB_PATH=$TMP/w.db "$WARMUP_BIN" 2>&1 </dev/null); rc=$?
  check "warmup-service refuses health-service's database, saying so" -- bash -c '[ "$1" != 0 ] && grep -q "DATABASE_URL: this database holds health-service.s tables" <<<"$2"' _ "$rc" "$out"
  eq "and leaves it as it was (no table of its own made there)" "$(pg_sql health "SELECT to_regclass('deliveries') IS NULL")" t
  # two instances on one database and one consumer group: both answer
  # from the shared store, one runs the rounds; killed, the other takes over
  HP2=$(freeport); H2=http://127.0.0.1:$HP2
  start_health health2 "$HP2" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json"
  ok $? "a second health-service on the same database"
  check "the first instance leads the rounds" -- grep -q "this instance is the leader" "$TMP/health/out.log"
  wait_for 10 grep -q "another instance is the leader" "$TMP/health2/out.log"
  ok $? "the second one ingests only"
  eq "both answer from the one store" "$(curl -s "$H2/mail_stats?email_id=$E" | $PY -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps([j[k] for k in ("tracked","delivered","spam","opened","read","bounced","pending")]))')" "$(got)"
  kill -KILL "$health_PID"; wait "$health_PID" 2>/dev/null
  wait_for 20 grep -q "this instance is the leader" "$TMP/health2/out.log"
  ok $? "the first killed (-9), the second takes the rounds over"
  r=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"from":"n@w.test","subject":"s2","body":"b"}' "$W/send")
  E2=$(jget "$r" 'j["email_id"]')
  wait_for 60 bash -c "curl -s '$H2/mail_stats?email_id=$E2' | grep -q '\"tracked\":90'"
  ok $? "the second instance tracks a new broadcast (Kafka partitions moved to it)"
  kcat -b "$BROKERS" -C -t email-events -e -q -f '%s\n' 2>/dev/null | grep "\"email_id\":$E2," > "$TMP/sent2.jsonl"
  want2=$($PY "$TMP/expect.py" "$TMP/sent2.jsonl")
  got2() { curl -s "$H2/mail_stats?email_id=$E2" | $PY -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps([j[k] for k in ("tracked","delivered","spam","opened","read","bounced","pending")]))'; }
  got2_is() { [ "$(got2)" = "$want2" ]; }
  wait_for 30 got2_is
  eq "its rounds give the new broadcast exactly the computed counts" "$(got2)" "$want2"
  # the database restarted under it: every connection lost, then found again
  restart_pg; ok $? "PostgreSQL restarted (fast shutdown: every session ends)"
  r=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"from":"n@w.test","subject":"s3","body":"b"}' "$W/send")
  E3=$(jget "$r" 'j["email_id"]')
  wait_for 60 bash -c "curl -s '$H2/mail_stats?email_id=$E3' | grep -q '\"tracked\":90'"
  ok $? "after the restart a new broadcast is tracked (the writer reconnected)"
  kcat -b "$BROKERS" -C -t email-events -e -q -f '%s\n' 2>/dev/null | grep "\"email_id\":$E3," > "$TMP/sent3.jsonl"
  want3=$($PY "$TMP/expect.py" "$TMP/sent3.jsonl")
  got3() { curl -s "$H2/mail_stats?email_id=$E3" | $PY -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps([j[k] for k in ("tracked","delivered","spam","opened","read","bounced","pending")]))'; }
  got3_is() { [ "$(got3)" = "$want3" ]; }
  wait_for 30 got3_is
  eq "and checked by the rounds with the computed counts (the leader took its lock again)" "$(got3)" "$want3"
  check "the reader answers again" -- bash -c "curl -fs '$H2/domains' | grep -q a.test"
  stop_named health2; eq "health2: SIGTERM exit 0" "$STOP_RC" 0
  check "no sanitizer report (health2)" -- sanitizer_clean health2
  stop_named warmup
  check "no sanitizer report (health)" -- sanitizer_clean health
  check "no sanitizer report (warmup)" -- sanitizer_clean warmup
  stop_pid "$SINK_PID"; stop_pid "$BROKER_PID"; stop_pg
  finish; exit
fi

# --- schemas 3 to 5 from a schema-2 database: per-domain counters rebuilt from
# the copies (3), copies keyed by a hash of the Message-ID instead of its text (5)
counts() { jget "$(curl -s "$H/domains")" '[[d[k] for k in ("tracked", "delivered", "spam", "opened", "read", "bounced", "unchecked", "rescued")] for d in j]'; }
copy_stats() { jget "$(curl -s "$H/mail_stats?mail_id=$cbare")" '[j[k] for k in ("tracked", "delivered", "spam", "opened", "read", "recipient")]'; }
dom_before=$(counts)
copy_before=$(copy_stats)
stop_named health
n_copies=$(sqlite3 "$TMP/health/health.db" 'SELECT count(*) FROM copies')
sqlite3 "$TMP/health/health.db" 'ALTER TABLE domains DROP COLUMN delivered; ALTER TABLE domains DROP COLUMN spam;
  ALTER TABLE domains DROP COLUMN opened; ALTER TABLE domains DROP COLUMN read; ALTER TABLE domains DROP COLUMN bounced;
  ALTER TABLE domains DROP COLUMN complained; ALTER TABLE email_stats DROP COLUMN complained;
  ALTER TABLE email_stats DROP COLUMN first_sent_at; DROP TABLE copy_batches;
  ALTER TABLE email_stats DROP COLUMN unchecked; ALTER TABLE email_stats DROP COLUMN rescued;
  ALTER TABLE domains DROP COLUMN unchecked; ALTER TABLE domains DROP COLUMN rescued;
  DROP TABLE analytics; DROP TABLE analytics_series;
  CREATE TABLE copies_v2 (message_id TEXT PRIMARY KEY, email_id INTEGER NOT NULL,
    broadcast_id TEXT NOT NULL, recipient TEXT NOT NULL, domain TEXT NOT NULL,
    smtp_client TEXT NOT NULL, sent_at INTEGER NOT NULL, bounced INTEGER NOT NULL DEFAULT 0,
    smtp_reply TEXT, placement INTEGER NOT NULL DEFAULT 0, opened INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0, rounds INTEGER NOT NULL DEFAULT 0, checked_at INTEGER);
  INSERT INTO copies_v2 SELECT message_id, email_id, broadcast_id, recipient, domain, smtp_client,
    sent_at, bounced, smtp_reply, placement, opened, read, rounds, checked_at FROM copies ORDER BY rowid;
  DROP TABLE copies; ALTER TABLE copies_v2 RENAME TO copies;
  CREATE INDEX copies_email ON copies(email_id);
  CREATE INDEX copies_open ON copies(domain, sent_at) WHERE bounced = 0;
  PRAGMA user_version = 2;'
ok $? "the database taken back to schema 2 (no per-domain counters, copies keyed by Message-ID text)"
start_health health "$HP" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json"
ok $? "health-service starts on it"
grep -q 'migrated schema to version 3' "$TMP/health/out.log"; ok $? "it migrates to schema 3"
grep -q 'migrated schema to version 5' "$TMP/health/out.log"; ok $? "and on to schema 5"
grep -q 'migrated schema to version 10' "$TMP/health/out.log"; ok $? "and on to schema 10 (unchecked, rescued)"
eq "per-domain counters rebuilt exactly from the copies" "$(counts)" "$dom_before"
eq "a copy still answers by its Message-ID" "$(copy_stats)" "$copy_before"
grep -q 'migrated schema to version 11' "$TMP/health/out.log"; ok $? "and on to schema 11 (analytics)"
an_before=$(jget "$(curl -s "$H/domains")" '[sum(d[k] for d in j) for k in ("tracked", "delivered", "spam", "opened", "read")]')
eq "/analytics counts rebuilt from the copies agree with /domains" "$(jget "$(curl -s "$H/analytics?bucket=day&from=$(date -u -d -360days +%Y-%m-%dT00:00:00Z)")" '[j["totals"][k] for k in ("sent", "delivered", "spam", "opened", "read")]' 2>/dev/null)" "$an_before"
eq "every copy kept, each with its hash key" "$(sqlite3 "$TMP/health/health.db" 'SELECT count(*), count(mid_hash) FROM copies')" "$n_copies|$n_copies"
stop_named health; stop_named warmup
check "no sanitizer report (health)" -- sanitizer_clean health
check "no sanitizer report (warmup)" -- sanitizer_clean warmup
stop_pid "$SINK_PID"; stop_pid "$BROKER_PID"
finish
