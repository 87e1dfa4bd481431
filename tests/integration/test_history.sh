#!/bin/bash
# test_history.sh - GET /history and archival (DESIGN 9.6) on the real
# service, Postfix smtp-sink and the dev broker: two broadcasts to 30
# users, each filter (recipient ignoring case, email_id, status, from/to),
# a walk of pages of 7 (every copy once, newest first), each copy's
# message_id the Message-ID the sink received; every bad parameter a 400
# JSON error. Archival: with the service stopped, one email's copies are
# made 40 days old in the SQLite file; restarted with ARCHIVE_AFTER_DAYS=30
# and ARCHIVE_BATCH=8 it moves exactly those into .jsonl.gz files (gzip -dc
# gives the /history objects), /history no longer shows them, /archives
# lists the files, /emails/{id} progress is unchanged, a leftover file is
# removed at start. Then the same against s3rver (UPLOAD_STORE=s3://).
. "$(dirname "$0")/lib.sh"

sink() { local port=$1 dir=$2; shift 2
  mkdir -p "$dir"; chmod 777 "$dir"
  smtp-sink -u nobody -d "$dir/%M." "$@" "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
  SINK_PID=$!; track $SINK_PID
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; }
sent_is() { [ "$(jget "$(curl -s "$W/emails/$1")" 'j["progress"]["sent"]')" = "$2" ]; }
archived_is() { [ "$(jget "$(curl -s "$W/archives")" 'sum(a["rows"] for a in j)')" = "$1" ]; }
# hist QUERY EXPR - EXPR over GET /history?QUERY's answer j
hist() { jget "$(curl -s "$W/history?$1")" "$2"; }
# walk QUERY LIMIT - every id of the query, page by page (one line)
walk() { $PY - "$W" "$1" "$2" <<'PY'
import json, sys, urllib.request, urllib.parse
base, q, limit = sys.argv[1], sys.argv[2], sys.argv[3]
ids, cur, pages = [], None, 0
while True:
    url = f"{base}/history?{q}&limit={limit}" + (f"&cursor={cur}" if cur else "")
    j = json.load(urllib.request.urlopen(url))
    ids += [c["id"] for c in j["copies"]]; pages += 1
    cur = j["next_cursor"]
    if not cur: break
print(pages, len(ids), len(set(ids)), ids == sorted(ids, reverse=True))
PY
}
# bad QUERY CODE - GET /history?QUERY answers 400 with error.code CODE
bad() { local r; r=$(http GET "$W/${3:-history}?$1")
  eq "400 $2: ?$1" "${r%% *} $(jget "${r#* }" 'j["error"]["code"]' 2>/dev/null)" "400 $2"; }

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
SP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
sink "$SP" "$TMP/sink"; ok $? "smtp-sink starts"
SMTP=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP SMTP_TLS=none WORKERS=2 MESSAGE_ID_DOMAIN=warmup.test LOG_LEVEL=info)
start_warmup w "$WP" "${SMTP[@]}"; ok $? "warmup-service starts"
DB="$TMP/w/warmup.db"
# dbq SQL - a query on the warmup database (TEST_DB=postgres: its PostgreSQL database)
dbq() { if [ "${TEST_DB:-sqlite}" = postgres ]; then pg_sql w_w "$1"; else sqlite3 "$DB" "$1"; fi; }
PG=0; [ "${TEST_DB:-sqlite}" = postgres ] && PG=1
nparts() { pg_sql w_w "SELECT count(*) FROM pg_inherits WHERE inhparent = 'deliveries'::regclass"; }
nparts_is() { [ "$(nparts)" = "$1" ]; }

$PY -c 'print("name,email_id"); [print(f"User {i},user{i}@d{i%3}.test") for i in range(30)]' > "$TMP/users.csv"
r=$(curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/users.csv" "$W/users/import")
eq "30 users imported" "$(jget "$r" 'j["imported"]')" 30
E1=$(jget "$(http POST "$W/send" '{"from":"a@sender.test","subject":"One","body":"Hi"}' | cut -d' ' -f2-)" 'j["email_id"]')
wait_for 60 sent_is "$E1" 30; ok $? "email 1 sent to 30"
T_MID=$($PY -c 'import time; print(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time())) + ".%03dZ" % (int(time.time()*1000) % 1000))')
sleep 0.05
E2=$(jget "$(http POST "$W/send" '{"from":"a@sender.test","subject":"Two","body":"Hi"}' | cut -d' ' -f2-)" 'j["email_id"]')
wait_for 60 sent_is "$E2" 30; ok $? "email 2 sent to 30"

# --- filters
R=$(curl -s "$W/history?recipient=USER3@D0.TEST")
eq "recipient, case ignored: both copies, newest first" "$(jget "$R" '[(c["email_id"], c["recipient"], c["status"], c["attempts"], c["last_code"]) for c in j["copies"]]')" \
  "[[$E2, \"user3@d0.test\", \"sent\", 1, 250], [$E1, \"user3@d0.test\", \"sent\", 1, 250]]"
eq "fields of a copy" "$(jget "$R" 'sorted(j["copies"][0])')" '["attempts", "email_id", "id", "last_code", "last_reply", "message_id", "next_attempt_at", "recipient", "status", "updated_at"]'
eq "last page: next_cursor null" "$(jget "$R" 'j["next_cursor"]')" None
# the message_id is the Message-ID the sink received for that copy
MID=$(jget "$R" 'j["copies"][0]["message_id"]')
check "message_id is the copy's Message-ID header (received by user3)" -- bash -c "grep -l '^Message-ID: $MID' $TMP/sink/* | xargs grep -q 'X-Rcpt-Args: <user3@d0.test>'"
eq "email_id: 30 copies of it" "$(hist "email_id=$E1" '[len(j["copies"]), {c["email_id"] for c in j["copies"]} == {'"$E1"'}]')" "[30, true]"
eq "status=sent" "$(hist "status=sent" 'len(j["copies"])')" 60
eq "status=dead: none" "$(hist "status=dead" 'len(j["copies"])')" 0
eq "status=pending: none" "$(hist "status=pending" 'len(j["copies"])')" 0
eq "from (after email 1): only email 2's copies" "$(hist "from=$T_MID" '[len(j["copies"]), {c["email_id"] for c in j["copies"]} == {'"$E2"'}]')" "[30, true]"
eq "to (before email 2): only email 1's" "$(hist "to=$T_MID" '[len(j["copies"]), {c["email_id"] for c in j["copies"]} == {'"$E1"'}]')" "[30, true]"
eq "every filter at once" "$(hist "recipient=user4@d1.test&email_id=$E2&status=sent&from=$T_MID&to=2100-01-01T00:00:00Z" '[c["recipient"] for c in j["copies"]]')" '["user4@d1.test"]'
eq "pages of 7: 9 pages, 60 copies, each once, newest first" "$(walk "x=1" 7)" "9 60 60 True"
eq "pages of 4 of email 1 (filter kept by the cursor)" "$(walk "email_id=$E1" 4)" "8 30 30 True"
# a status and a time range alone (PostgreSQL: read from deliveries_updated alone)
eq "status=sent and from: email 2's copies" "$(hist "status=sent&from=$T_MID" '[len(j["copies"]), {c["email_id"] for c in j["copies"]} == {'"$E2"'}]')" "[30, true]"
eq "status=dead and from: none" "$(hist "status=dead&from=$T_MID&to=2100-01-01T00:00:00Z" 'len(j["copies"])')" 0
eq "pages of 7 of a status and range (filters kept by the cursor)" "$(walk "status=sent&to=$T_MID" 7)" "5 30 30 True"

# --- bad parameters: 400 JSON naming the problem
bad "status=bogus" invalid_field
bad "recipient=nobody" invalid_field
bad "from=yesterday" invalid_field
bad "to=2026-13-01T00:00:00Z" invalid_field
bad "from=2026-12-05T10:00:00Z&to=2026-12-05T10:00:00Z" invalid_field
bad "limit=0" invalid_query
bad "limit=1001" invalid_query
bad "email_id=x" invalid_query
bad "cursor=zzzz" invalid_cursor
CUR=$(hist "email_id=$E1&limit=2" 'j["next_cursor"]')
bad "email_id=$E2&limit=2&cursor=$CUR" invalid_cursor
bad "limit=2&cursor=${CUR:0:31}0" invalid_cursor
bad "limit=-1" invalid_query archives
eq "a cursor continues its own query" "$(hist "email_id=$E1&limit=2&cursor=$CUR" 'len(j["copies"])')" 2
check "/archives: none yet" -- test "$(curl -s "$W/archives")" = "[]"
curl -s "$W/history?email_id=$E1&limit=1000" > "$TMP/e1.json"

# --- archival (local): email 1's copies made 40 days old while stopped (3456000000 ms; a product of two literals overflows PostgreSQL's int4)
stop_named w; eq "stopped (SIGTERM): exit 0" "$STOP_RC" 0
dbq "UPDATE deliveries SET updated_at = updated_at - 3456000000 WHERE email_id = $E1;"
if [ $PG = 1 ]; then
  # PostgreSQL: email 1's copies moved into the partition of a month that
  # ended more than 30 days ago; archived, it is dropped (the live table shrinks)
  read -r YM LO HI < <($PY -c '
import datetime as d
t = d.datetime.now(d.timezone.utc); m = t.year * 12 + t.month - 1 - 3
a = d.datetime(m // 12, m % 12 + 1, 1, tzinfo=d.timezone.utc); m += 1
b = d.datetime(m // 12, m % 12 + 1, 1, tzinfo=d.timezone.utc)
print(a.strftime("%Y%m"), int(a.timestamp() * 1000), int(b.timestamp() * 1000))')
  dbq "CREATE TABLE deliveries_p$YM PARTITION OF deliveries FOR VALUES FROM ($LO) TO ($HI)" >/dev/null
  dbq "UPDATE deliveries SET created_ms = $LO + id WHERE email_id = $E1" >/dev/null
  eq "PostgreSQL: email 1's copies in partition deliveries_p$YM" "$(dbq "SELECT count(*) FROM deliveries_p$YM")" 30
  NPARTS=$(nparts)
fi
mkdir -p "$TMP/w/archives"; : > "$TMP/w/archives/copies-0000000000001-1.jsonl.gz"
start_warmup w "$WP" "${SMTP[@]}" ARCHIVE_AFTER_DAYS=30 ARCHIVE_BATCH=8; ok $? "restarted with ARCHIVE_AFTER_DAYS=30"
wait_for 30 archived_is 30; ok $? "/archives: 30 copies archived"
A=$(curl -s "$W/archives")
eq "4 files of at most 8, local" "$(jget "$A" '[len(j), [a["rows"] for a in j], sorted({a["store"] for a in j})]')" '[4, [8, 8, 8, 6], ["local"]]'
eq "archive fields" "$(jget "$A" 'sorted(j[0])')" '["bytes", "created_at", "first_id", "from", "id", "last_id", "name", "rows", "store", "to"]'
check "the leftover file without a row was removed at start" -- test ! -e "$TMP/w/archives/copies-0000000000001-1.jsonl.gz"
check "each file's size is its bytes" -- $PY -c "
import json, os, sys
for a in json.loads(sys.argv[1]):
    assert os.path.getsize('$TMP/w/archives/' + a['name']) == a['bytes'], a" "$A"
(cd "$TMP/w/archives" && for f in $(jget "$A" '" ".join(a["name"] for a in j)'); do gzip -dc "$f"; done) > "$TMP/archived.jsonl"
ok $? "gzip -dc decompresses every file"
check "the files hold exactly email 1's copies, as /history showed them" -- $PY -c "
import json
before = {c['id']: c for c in json.load(open('$TMP/e1.json'))['copies']}
got = [json.loads(l) for l in open('$TMP/archived.jsonl')]
assert len(got) == 30 and {c['id'] for c in got} == set(before), len(got)
for c in got:
    b = dict(before[c['id']]); bu = b.pop('updated_at'); u = c.pop('updated_at')
    assert c == b and u < bu, (c, b, u, bu)"
eq "/history shows none of email 1" "$(hist "email_id=$E1" 'len(j["copies"])')" 0
eq "/history still shows email 2's" "$(hist "email_id=$E2" 'len(j["copies"])')" 30
eq "the live table shrank to 30 rows" "$(dbq 'SELECT count(*) FROM deliveries')" 30
if [ $PG = 1 ]; then
  check "PostgreSQL: the archived month's partition is dropped" -- \
    wait_for 10 nparts_is $((NPARTS - 1))
  eq "  deliveries_p$YM is gone" "$(dbq "SELECT coalesce(to_regclass('deliveries_p$YM')::text, 'gone')")" gone
  eq "  this month's and the next two months' partitions exist" "$(dbq "SELECT count(*) FROM pg_class WHERE relname IN (SELECT 'deliveries_p' || to_char(date_trunc('month', now()) + make_interval(months => i), 'YYYYMM') FROM generate_series(0, 2) i)")" 3
fi
eq "email 1's progress unchanged" "$(jget "$(curl -s "$W/emails/$E1")" '[j["progress"]["sent"], j["progress"]["pending"], j["status"]]')" '[30, 0, "done"]'
check "no sanitizer report" -- sanitizer_clean w

# --- archival to S3 (s3rver): email 2's copies
S3DIR="$SRC_DIR/.cache/s3rver"
if ! command -v node >/dev/null 2>&1; then
  echo "# SKIP s3: node is not installed"
else
  "$SRC_DIR/deploy/install-s3rver.sh" | sed 's/^/# /'
  S3P=$(freeport); mkdir -p "$TMP/s3"
  node "$S3DIR/node_modules/s3rver/bin/s3rver.js" -d "$TMP/s3" -p "$S3P" -a 127.0.0.1 --configure-bucket hist >"$TMP/s3.log" 2>&1 &
  track $!
  wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$S3P"; ok $? "s3rver starts"
  curl -s "$W/history?email_id=$E2&limit=1000" > "$TMP/e2.json"
  stop_named w
  dbq "UPDATE deliveries SET updated_at = updated_at - 3456000000 WHERE email_id = $E2;"
  start_warmup w "$WP" "${SMTP[@]}" ARCHIVE_AFTER_DAYS=30 UPLOAD_STORE=s3://hist/pfx S3_ENDPOINT=http://127.0.0.1:$S3P \
    AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER; ok $? "restarted with UPLOAD_STORE=s3://hist/pfx"
  wait_for 30 archived_is 60; ok $? "/archives: 30 more copies"
  A=$(curl -s "$W/archives")
  eq "one s3 object, named under prefix/archives/" "$(jget "$A" '[(a["store"], a["rows"], a["name"].startswith("pfx/archives/copies-")) for a in j if a["store"] == "s3"]')" '[["s3", 30, true]]'
  KEY=$(jget "$A" '[a["name"] for a in j if a["store"] == "s3"][0]')
  OBJ="$TMP/s3/hist/$KEY._S3rver_object"   # s3rver's file of the object's bytes
  check "the object is in the bucket with its bytes" -- $PY -c "
import json, os, sys
a = [a for a in json.loads(sys.argv[1]) if a['store'] == 's3'][0]
assert os.path.getsize('$OBJ') == a['bytes'], (os.path.getsize('$OBJ'), a)" "$A"
  check "gzip -dc of the object: exactly email 2's copies" -- $PY -c "
import json, gzip
before = {c['id']: c for c in json.load(open('$TMP/e2.json'))['copies']}
got = [json.loads(l) for l in gzip.open('$OBJ', 'rt')]
assert len(got) == 30 and {c['id'] for c in got} == set(before), len(got)"
  eq "/history is empty now" "$(hist "x=1" 'len(j["copies"])')" 0
  eq "email 2's progress unchanged" "$(jget "$(curl -s "$W/emails/$E2")" '[j["progress"]["sent"], j["status"]]')" '[30, "done"]'
  check "no secret in the log" -- bash -c "! grep -q 'S3RVER' '$TMP/w/out.log'"
fi
stop_named w; eq "stopped: exit 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean w
finish
