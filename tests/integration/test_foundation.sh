#!/bin/bash
# test_foundation.sh - registration flowing through a real Kafka-protocol
# broker (kafka-dev-broker) to the health service: events and their schema,
# CSV import, restarts, and a broker outage that loses nothing.
. "$(dirname "$0")/lib.sh"

# --- the command line: --version, --help (the service does not start), bad arguments
version=$(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" "$SRC_DIR/meson.build" | head -1)
for svc in warmup health; do
  bin=$WARMUP_BIN; [ $svc = health ] && bin=$HEALTH_BIN
  out=$(cd "$TMP" && "$bin" --version 2>&1); rc=$?
  eq "$svc-service --version prints meson's version, exits 0" "$rc $out" "0 $svc-service $version"
  (cd "$TMP" && DB_PATH="$TMP/$svc-help.db" PORT=1 "$bin" --help > "$TMP/$svc.help" 2> "$TMP/$svc.help.err"); rc=$?
  eq "$svc-service --help exits 0 and writes nothing on stderr" "$rc $(wc -c < "$TMP/$svc.help.err")" "0 0"
  check "$svc-service --help starts nothing (no database file)" -- test ! -e "$TMP/$svc-help.db"
  check "$svc-service --help shows a usage line" -- grep -q "^Usage: $svc-service \[--help | --version\]" "$TMP/$svc.help"
  (cd "$TMP" && DB_PATH="$TMP/$svc-bad.db" "$bin" --bogus > "$TMP/$svc.bad" 2> "$TMP/$svc.bad.err"); rc=$?
  eq "$svc-service with an unknown argument exits 2, nothing on stdout" "$rc $(wc -c < "$TMP/$svc.bad")" "2 0"
  check "$svc-service with an unknown argument: the usage on stderr" -- grep -q "^Usage: $svc-service" "$TMP/$svc.bad.err"
  check "$svc-service with an unknown argument starts nothing" -- test ! -e "$TMP/$svc-bad.db"
done
# every variable the code reads is in --help and in the README's Configuration
# table, and nothing else is: one list per service cannot drift from the other two
$PY - "$SRC_DIR" "$TMP/warmup.help" "$TMP/health.help" > "$TMP/vars.out" 2>&1 <<'PY'
import glob, re, sys
src, helps = sys.argv[1], {"warmup": sys.argv[2], "health": sys.argv[3]}
def code_vars(dirs):
    call = re.compile(r'\b(?:config_[a-z_]+|env_[a-z_]+)\(\s*"([A-Z][A-Z0-9_]*)"')
    return {m for d in dirs for f in glob.glob(f"{src}/{d}/**/*.c", recursive=True)
            for m in call.findall(open(f, encoding="utf-8").read())}
readme = open(f"{src}/README.md", encoding="utf-8").read()
conf = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
table = {"warmup": set(), "health": set()}
for row in conf.splitlines():
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    if len(cells) < 4 or not cells[0].startswith("`"):
        continue
    for svc in table:
        if cells[1] in ("both", svc):
            table[svc] |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]))
bad = 0
for svc, help_file in helps.items():
    text = open(help_file, encoding="utf-8").read().split("\n  variable ", 1)[1]
    shown = set(re.findall(r"^  ([A-Z][A-Z0-9_]*) ", text, re.M))
    code = code_vars(["libshared", f"{svc}-service"])
    for name, got in (("--help", shown), ("README", table[svc])):
        for v in sorted(code - got):
            print(f"{svc}-service reads {v}, missing from {name}"); bad = 1
        for v in sorted(got - code):
            print(f"{svc}-service {name} lists {v}, which the code does not read"); bad = 1
print(f"{len(code_vars(['libshared', 'warmup-service']))} + "
      f"{len(code_vars(['libshared', 'health-service']))} variables")
sys.exit(bad)
PY
ok $? "--help, the README's Configuration table and the code read the same variables"
sed 's/^/# /' "$TMP/vars.out"

# --- a thread that cannot start: each pthread_create of the start-up in turn fails
# (failthread.c); the service stops with one error line and exit status 2 and never
# joins a thread that was not started (a run without failures counts the calls)
if ${CC:-cc} -shared -fPIC -o "$TMP/failthread.so" "$SRC_DIR/tests/integration/failthread.c" -ldl; then
  # ft_run SVC N - start SVC with the N-th thread start failing (0: none); sets FT_RC, FT_DIR
  ft_run() {
    local bin=$WARMUP_BIN pid; [ "$1" = health ] && bin=$HEALTH_BIN
    FT_DIR=$TMP/ft-$1-$2; mkdir -p "$FT_DIR"
    (cd "$FT_DIR" && ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 LD_PRELOAD="$TMP/failthread.so" \
      FAIL_THREAD_AT=$2 FAIL_THREAD_LOG="$FT_DIR/threads" PORT=0 DB_PATH="$FT_DIR/s.db" \
      KAFKA_BROKERS=127.0.0.1:1 CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$FT_DIR/spool" \
      WORKERS=3 exec "$bin" > "$FT_DIR/out" 2>&1) & pid=$!
    wait_for 10 bash -c "! kill -0 $pid 2>/dev/null || grep -q ' listening on ' '$FT_DIR/out'"
    if grep -q ' listening on ' "$FT_DIR/out"; then FT_N=$(wc -l < "$FT_DIR/threads"); stop_pid $pid 10; FT_RC=listening
    else wait $pid; FT_RC=$?; fi
  }
  for svc in warmup health; do
    ft_run $svc 0; total=$FT_N; bad=""
    for ((n = 1; n <= total; n++)); do
      ft_run $svc $n
      if [ "$FT_RC" != 2 ] || grep -q 'Sanitizer\|runtime error' "$FT_DIR/out" || ! grep -q ' error ' "$FT_DIR/out"; then
        bad="$bad n=$n:$FT_RC"
      fi
    done
    eq "$svc-service: each of its $total thread starts failing in turn stops it with exit 2" "${bad:-none}" none
  done
else
  ok 1 "failthread.so builds"
fi

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
ok 0 "kafka-dev-broker starts at $BROKERS"
WP=$(freeport); HP=$(freeport)
W=http://127.0.0.1:$WP; H=http://127.0.0.1:$HP
start_warmup warmup "$WP"; ok $? "warmup-service starts"
start_health health "$HP"; ok $? "health-service starts"
# libmicrohttpd warns at start-up when its logger is not its first option
for svc in warmup health; do
  check "$svc-service starts without libmicrohttpd's option-order warning" -- \
    bash -c "! grep -q 'MHD_OPTION' '$TMP/$svc/out.log'"
done

# --- register users on three domains over HTTP
users=("Alice:alice@example.com" "Bob:bob@Example.COM" "Carol Ünicode:carol@example.org"
       "Dave:dave@example.net" "Eve:eve@example.net")
for u in "${users[@]}"; do
  r=$(http POST "$W/register" "{\"name\":\"${u%%:*}\",\"email_id\":\"${u#*:}\"}")
  eq "POST /register ${u#*:} -> 201" "${r%% *}" 201
done
body=${r#* }
eq "201 body has name" "$(jget "$body" 'j["name"]')" "Eve"
eq "201 body has email_id" "$(jget "$body" 'j["email_id"]')" "eve@example.net"
check "201 body has an RFC 3339 created_at" -- $PY -c 'import sys,datetime; datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%S.%fZ")' "$(jget "$body" 'j["created_at"]')"
r=$(http GET "$W/users")
eq "GET /users lists 5 users" "$(jget "${r#* }" 'len(j)')" 5
eq "domain is lower-cased, local part kept" "$(jget "${r#* }" 'j[1]["email_id"]')" "bob@example.com"
eq "UTF-8 name round-trips" "$(jget "${r#* }" 'j[2]["name"]')" "Carol Ünicode"
r=$(http GET "$W/users?limit=2&offset=3")
eq "GET /users?limit=2&offset=3" "$(jget "${r#* }" '[u["email_id"] for u in j]')" '["dave@example.net", "eve@example.net"]'
r=$(http GET "$W/emailIds")
eq "GET /emailIds" "$(jget "${r#* }" 'j')" '["alice@example.com", "bob@example.com", "carol@example.org", "dave@example.net", "eve@example.net"]'

# --- the events, read back with kcat, every field of the schema
wait_for 15 bash -c "[ \$(kcat -b $BROKERS -C -t emailId-events -e -q -f '%k\n' 2>/dev/null | wc -l) -ge 5 ]"
kcat -b "$BROKERS" -C -t emailId-events -e -q -f '%k\t%s\n' > "$TMP/events.tsv" 2>/dev/null
eq "5 user.registered events on emailId-events" "$(wc -l < "$TMP/events.tsv")" 5
$PY - "$TMP/events.tsv" > "$TMP/schema.out" 2>&1 <<'PY'
import json, sys, datetime
want = {"alice@example.com": ("Alice", "example.com"), "bob@example.com": ("Bob", "example.com"),
        "carol@example.org": ("Carol Ünicode", "example.org"), "dave@example.net": ("Dave", "example.net"),
        "eve@example.net": ("Eve", "example.net")}
seen = set()
for line in open(sys.argv[1], encoding="utf-8"):
    key, val = line.rstrip("\n").split("\t", 1)
    e = json.loads(val)
    assert set(e) == {"v", "type", "email_id", "name", "domain", "at"}, e
    assert e["v"] == 1 and e["type"] == "user.registered", e
    name, dom = want[e["email_id"]]
    assert e["name"] == name and e["domain"] == dom and key == dom, (e, key)
    datetime.datetime.strptime(e["at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    seen.add(e["email_id"])
assert seen == set(want), seen
print("schema ok")
PY
ok $? "every event has exactly the schema's fields, key = domain"; grep -v 'schema ok' "$TMP/schema.out" | sed 's/^/# /'

# --- the health service sees the domains
dom_ok() { r=$(curl -s "$H/domains"); [ "$(jget "$r" '{d["domain"]: d["users"] for d in j}')" = "$1" ]; }
wait_for 30 dom_ok '{"example.com": 2, "example.net": 2, "example.org": 1}'
ok $? "health /domains shows 3 domains with their user counts"

# --- CSV import (streamed), registered exactly as by /register
printf 'name,email_id\r\n"Smith, John",john@import.test\r\nKim,kim@import.test\r\n"bad ""quote",x\r\nnot-an-address,nope\r\nAlice again,alice@example.com\r\n\r\nLee,lee@import.test\r\n' > "$TMP/users.csv"
r=$(curl -s -w ' %{http_code}' -H 'Content-Type: text/csv' --data-binary @"$TMP/users.csv" "$W/users/import")
eq "import -> 200" "${r##* }" 200
body=${r% *}
eq "import counts" "$(jget "$body" '[j["imported"], j["duplicates"], [i["line"] for i in j["invalid"]]]')" '[3, 1, [4, 5]]'
r=$(http GET "$W/users?limit=1000")
eq "imported users are listed" "$(jget "${r#* }" 'j[5]["name"]')" "Smith, John"
wait_for 30 dom_ok '{"example.com": 2, "example.net": 2, "example.org": 1, "import.test": 3}'
ok $? "imported users reach the health service"

# --- restart both services: users and domains intact
stop_named warmup; eq "warmup-service exits 0 on SIGTERM" "$STOP_RC" 0
t0=$(date +%s%N)
stop_named health; eq "health-service exits 0 on SIGTERM" "$STOP_RC" 0
# its consumer handle is destroyed, not abandoned after the 5 s bound (the
# partition list from rd_kafka_assignment() used to outlive the handle)
check "... within 3 s" -- test $((($(date +%s%N) - t0) / 1000000)) -lt 3000
check "... destroying its Kafka clients" -- bash -c "! grep -q 'not destroyed after' '$TMP/health/out.log'"
start_warmup warmup "$WP"; start_health health "$HP"
r=$(http GET "$W/users?limit=1000")
eq "users intact after restart" "$(jget "${r#* }" 'len(j)')" 8
dom_ok '{"example.com": 2, "example.net": 2, "example.org": 1, "import.test": 3}'
ok $? "domains intact after restart"
wait_for 20 curl -fsS "$W/readyz"; ok $? "warmup /readyz 200 with Kafka up"
wait_for 20 curl -fsS "$H/readyz"; ok $? "health /readyz 200 with Kafka up"

# --- broker outage: 201 while Kafka is down, events delivered once it is back
kill -USR1 "$BROKER_PID"; sleep 0.5
for i in 1 2 3; do
  r=$(http POST "$W/register" "{\"name\":\"Out $i\",\"email_id\":\"out$i@outage.test\"}")
  eq "register during the outage -> 201" "${r%% *}" 201
done
pending() { curl -s "$W/metrics" | awk '$1=="outbox_pending"{print $2}'; }
pending_is() { [ "$(pending)" = "$1" ]; }
wait_for 10 pending_is 3   # the gauge is refreshed by the publisher thread, not at once
eq "events wait in the outbox while Kafka is down" "$(pending)" 3
wait_for 30 bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $W/readyz) = 503 ]"
ok $? "warmup /readyz says 503 while Kafka is down"
stop_named warmup; eq "warmup-service stops cleanly during the outage" "$STOP_RC" 0
start_warmup warmup "$WP"
eq "outbox survives a restart" "$(pending)" 3
kill -USR2 "$BROKER_PID"
wait_for 60 bash -c "[ \"\$(curl -s $W/metrics | awk '\$1==\"outbox_pending\"{print \$2}')\" = 0 ]"
ok $? "outbox drains when the broker is back"
wait_for 60 dom_ok '{"example.com": 2, "example.net": 2, "example.org": 1, "import.test": 3, "outage.test": 3}'
ok $? "the health service counts each outage user exactly once"
n=$(kcat -b "$BROKERS" -C -t emailId-events -e -q -f '%s\n' 2>/dev/null | grep -c '@outage.test')
check "each outage event is on Kafka (at least once)" -- test "$n" -ge 3
eq "distinct outage events" "$(kcat -b "$BROKERS" -C -t emailId-events -e -q -f '%s\n' 2>/dev/null | grep '@outage.test' | $PY -c 'import sys,json; print(len({json.loads(l)["email_id"] for l in sys.stdin}))')" 3
consumed() { curl -s "$H/metrics" | awk '$1=="health_events_consumed_total"{print $2}'; }
check "health counted consumed events" -- test "$(consumed)" -ge 3

stop_named warmup; eq "warmup exits 0" "$STOP_RC" 0
stop_named health; eq "health exits 0" "$STOP_RC" 0
check "no sanitizer report in warmup-service" -- sanitizer_clean warmup
check "no sanitizer report in health-service" -- sanitizer_clean health
# a consumer whose broker went away still shuts down (librdkafka 2.0 can
# hang forever in rd_kafka_destroy after an outage: the destroy is bounded)
stop_pid "$BROKER_PID"; eq "broker exits 0 on SIGTERM" "$?" 0
start_broker "$TMP/broker2"; ok $? "a second broker starts"
HP2=$(freeport)
start_health health2 "$HP2"
wait_for 20 grep -q "kconsumer: assigned [1-9]" "$TMP/health2/out.log"; ok $? "a health-service on it joins its group and gets partitions"
kill -KILL "$BROKER_PID"; sleep 1
stop_named health2; eq "health-service exits 0 on SIGTERM after its broker is gone" "$STOP_RC" 0
check "... and logs its last line" -- grep -q ' stopped$' "$TMP/health2/out.log"
check "no sanitizer report in that health-service" -- sanitizer_clean health2
finish
