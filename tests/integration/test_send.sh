#!/bin/bash
# test_send.sh - broadcast, backfill, 5xx dead letters and /reconcile, and
# bad /send bodies, through the real Postfix smtp-sink and the dev broker.
. "$(dirname "$0")/lib.sh"

# sink PORT DIR [args] - smtp-sink dumping every transaction into DIR
sink() { local port=$1 dir=$2; shift 2
  mkdir -p "$dir"; chmod 777 "$dir"
  smtp-sink -u nobody -d "$dir/%M." "$@" "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
  SINK_PID=$!; track $SINK_PID
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; }
# rcpts DIR - one line per recipient received
rcpts() { cat "$1"/* 2>/dev/null | sed -n 's/^X-Rcpt-Args: <\(.*\)>.*/\1/p'; }
progress() { jget "$(curl -s "$W/emails/$1")" '"%d %d %d %d %s" % (j["progress"]["sent"], j["progress"]["failed"], j["progress"]["pending"], j["progress"]["dead"], j["status"])'; }

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
SP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
sink "$SP" "$TMP/sink1"; ok $? "smtp-sink starts"
SMTP=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP SMTP_TLS=none WORKERS=4 RETRY_BASE_MS=200 RETRY_MAX=3 MESSAGE_ID_DOMAIN=warmup.test)
start_warmup warmup "$WP" "${SMTP[@]}" LOG_LEVEL=info; ok $? "warmup-service starts with the CUSTOM client"

# --- 1000 users, one broadcast: every recipient exactly one copy
$PY -c 'print("name,email_id"); [print(f"User {i},user{i}@d{i%3}.test") for i in range(1000)]' > "$TMP/users.csv"
r=$(curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/users.csv" "$W/users/import")
eq "1000 users imported" "$(jget "$r" 'j["imported"]')" 1000
r=$(http POST "$W/send" '{"from":"noreply@sender.test","subject":"Hello {{name}}","body":"Hi {{name}}, your address is {{email_id}}.\n-- \nWarmup"}')
eq "POST /send -> 202" "${r%% *}" 202
body=${r#* }
EID=$(jget "$body" 'j["email_id"]')
eq "202 body" "$(jget "$body" '[j["message_id"], j["recipients"]]')" "[\"<email-$EID@warmup.test>\", 1000]"
wait_for 120 bash -c "[ \"\$(curl -s $W/emails/$EID | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"sent\"])')\" = 1000 ]"
ok $? "progress reaches sent=1000"
eq "progress after the broadcast" "$(progress "$EID")" "1000 0 0 0 done"
rcpts "$TMP/sink1" | sort > "$TMP/got1"
eq "1000 copies received" "$(wc -l < "$TMP/got1")" 1000
eq "every recipient exactly once" "$(sort -u "$TMP/got1" | wc -l)" 1000
grep -l "^Subject: Hello User 7$" "$TMP"/sink1/* > "$TMP/u7" 2>/dev/null
check "placeholders filled per recipient" -- bash -c "[ \$(wc -l < $TMP/u7) = 1 ] && grep -q 'user7@d1.test' \$(cat $TMP/u7)"
check "each copy has its own Message-ID" -- bash -c "[ \$(grep -h '^Message-ID:' $TMP/sink1/* | sort -u | wc -l) = 1000 ]"
check "copy Message-IDs have the contract's form" -- bash -c "grep -h '^Message-ID:' $TMP/sink1/* | grep -Eqv '^Message-ID: <email-$EID\\.[0-9a-f]{16}@warmup\\.test>' && exit 1 || exit 0"

# --- the events: 1000 email.sent with the schema's fields
wait_for 60 bash -c "[ \$(kcat -b $BROKERS -C -t email-events -e -q -f '%s\n' 2>/dev/null | wc -l) -ge 1000 ]"
kcat -b "$BROKERS" -C -t email-events -e -q -f '%k\t%s\n' > "$TMP/ev.tsv" 2>/dev/null
$PY - "$TMP/ev.tsv" "$EID" > "$TMP/ev.out" 2>&1 <<'PY'
import json, sys, datetime
eid = int(sys.argv[2]); seen = {}
for line in open(sys.argv[1], encoding="utf-8"):
    key, val = line.rstrip("\n").split("\t", 1)
    e = json.loads(val)
    assert set(e) == {"v","type","message_id","broadcast_id","email_id","recipient","domain","smtp_client","identity","sent_at"}, e
    assert e["identity"] == "noreply@sender.test", e
    assert e["v"] == 1 and e["type"] == "email.sent" and e["email_id"] == eid, e
    assert e["broadcast_id"] == f"<email-{eid}@warmup.test>" and key == e["message_id"], e
    assert e["message_id"].startswith(f"<email-{eid}.") and e["smtp_client"] == "custom", e
    assert e["domain"] == e["recipient"].split("@")[1], e
    datetime.datetime.strptime(e["sent_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    seen[e["recipient"]] = e["message_id"]
assert len(seen) == 1000 and len(set(seen.values())) == 1000, len(seen)
print("events ok")
PY
ok $? "1000 email.sent events, one per recipient, every field of the schema"; grep -v 'events ok' "$TMP/ev.out" | head -3 | sed 's/^/# /'

# --- backfill: three emails exist, a new user receives all three
for i in 2 3; do http POST "$W/send" "{\"from\":\"noreply@sender.test\",\"subject\":\"Mail $i\",\"body\":\"b\"}" >/dev/null; done
wait_for 60 bash -c "[ \$(cat $TMP/sink1/* | grep -c '^X-Rcpt-Args:') -ge 3000 ]"
r=$(http POST "$W/register" '{"name":"Late","email_id":"late@late.test"}')
eq "late registration -> 201" "${r%% *}" 201
wait_for 30 bash -c "[ \$(cat $TMP/sink1/* | grep -c '^X-Rcpt-Args: <late@late.test>') -ge 3 ]"
eq "the late user receives the three earlier emails" "$(rcpts "$TMP/sink1" | grep -c '^late@late.test$')" 3
eq "progress counts the backfilled copy" "$(progress "$EID")" "1001 0 0 0 done"
r=$(http GET "$W/emails")
eq "GET /emails lists three emails" "$(jget "${r#* }" '[e["progress"]["sent"] for e in j]')" "[1001, 1001, 1001]"

# --- 5xx: dead-lettered at once with the reply; /reconcile requeues
stop_pid "$SINK_PID"
sink "$SP" "$TMP/sink2" -f RCPT
r=$(http POST "$W/send" '{"from":"noreply@sender.test","subject":"Rejected","body":"b","tpm":60000}')
E5=$(jget "${r#* }" 'j["email_id"]')
wait_for 60 bash -c "[ \"\$(curl -s $W/emails/$E5 | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"dead\"])')\" = 1001 ]"
ok $? "every copy dead-lettered on 5xx"
eq "no retry on 5xx" "$(curl -s "$W/metrics" | awk '$1 ~ /^email_retries_total/ {s+=$2} END {print s+0}')" 0
r=$(http GET "$W/dlq?email_id=$E5&limit=5")
eq "/dlq shows the server's reply" "$(jget "${r#* }" '[len(j), j[0]["smtp_code"] // 100, j[0]["attempts"], j[0]["smtp_reply"].startswith(str(j[0]["smtp_code"])), j[0]["smtp_enhanced"][:2]]')" '[5, 5, 1, true, "5."]'
r2=$(http GET "$W/dlq?email_id=$E5&limit=2&offset=1")
eq "/dlq?offset= pages" "$(jget "${r2#* }" '[d["delivery_id"] for d in j]')" "$(jget "${r#* }" '[d["delivery_id"] for d in j][1:3]')"
wait_for 30 bash -c "[ \$(kcat -b $BROKERS -C -t email-events -e -q -f '%s\n' 2>/dev/null | grep -c email.failed) -ge 1001 ]"
ok $? "1001 email.failed events"
kcat -b "$BROKERS" -C -t email-events -e -q -f '%s\n' 2>/dev/null | grep -m1 email.failed > "$TMP/failed.json"
eq "email.failed carries smtp_reply" "$(jget "$(cat "$TMP/failed.json")" 'j["smtp_reply"][:1] + str(len(j["smtp_reply"]) > 8)')" 5True
stop_pid "$SINK_PID"
sink "$SP" "$TMP/sink3"
r=$(http POST "$W/emails/$E5/reconcile" "")
eq "/reconcile requeues the dead letters" "$(jget "${r#* }" 'j["requeued"]')" 1001
wait_for 60 bash -c "[ \"\$(curl -s $W/emails/$E5 | $PY -c 'import json,sys; p=json.load(sys.stdin)[\"progress\"]; print(p[\"sent\"], p[\"dead\"])')\" = '1001 0' ]"
ok $? "requeued copies are sent"

# --- bad /send bodies: 4xx, nothing queued
bad() { local want=$1 name=$2 b=$3; shift 3
  local r; r=$(http POST "$W/send" "$b" "$@")
  if [ "${r%% *}" = "$want" ] && [ -n "$(jget "${r#* }" 'j["error"]["code"]')" ]; then ok 0 "$name -> $want"; else ok 1 "$name -> $want"; echo "#   got $r"; fi; }
V='"from":"a@b.test","subject":"s","body":"b"'
bad 400 "CRLF in subject (header injection)" '{"from":"a@b.test","subject":"s\r\nBcc: victim@x.test","body":"b"}'
bad 400 "LF in subject" '{"from":"a@b.test","subject":"s\nX: y","body":"b"}'
bad 400 "CR in from_name" "{$V,\"from_name\":\"N\\rBcc: v@x.test\"}"
bad 400 "CRLF in from" '{"from":"a@b.test\r\nBcc: v@x.test","subject":"s","body":"b"}'
bad 400 "control char in subject" '{"from":"a@b.test","subject":"s\u0007","body":"b"}'
bad 400 "from missing" '{"subject":"s","body":"b"}'
bad 400 "subject missing" '{"from":"a@b.test","body":"b"}'
bad 400 "body missing" '{"from":"a@b.test","subject":"s"}'
bad 400 "from not an address" '{"from":"nope","subject":"s","body":"b"}'
bad 400 "from with display name" '{"from":"A <a@b.test>","subject":"s","body":"b"}'
bad 400 "from with a UTF-8 local part (no SMTPUTF8)" '{"from":"j\u00f6rg@b.test","subject":"s","body":"b"}'
bad 400 "from with an invalid IDN domain" '{"from":"a@\u2603\u200d.test","subject":"s","body":"b"}'
bad 400 "subject a number" '{"from":"a@b.test","subject":5,"body":"b"}'
bad 400 "body a number" '{"from":"a@b.test","subject":"s","body":5}'
bad 400 "html an object" "{$V,\"html\":{}}"
bad 400 "empty subject" '{"from":"a@b.test","subject":"","body":"b"}'
bad 400 "subject over 998 bytes" "{\"from\":\"a@b.test\",\"subject\":\"$(printf 'x%.0s' $(seq 1000))\",\"body\":\"b\"}"
bad 400 "unknown smtp_client" "{$V,\"smtp_client\":\"nope\"}"
bad 400 "tpm negative" "{$V,\"tpm\":-1}"
bad 400 "tpm a string" "{$V,\"tpm\":\"600\"}"
bad 400 "tpm a float" "{$V,\"tpm\":1.5}"
bad 400 "unknown field" "{$V,\"bcc\":\"x@y.test\"}"
bad 400 "malformed JSON" '{"from":'
bad 400 "array body" '[]'
bad 415 "text/plain" "{$V}" -H 'Content-Type: text/plain'
head -c 1100000 /dev/zero | tr '\0' 'a' > "$TMP/big"
bad 413 "body over 1 MiB" '' -H 'Content-Type: application/json' --data-binary @"$TMP/big"
# template amplification: 1 MiB of {{name}} would fill to ~33 MB per copy
$PY -c 'import json; print(json.dumps({"from":"a@b.test","subject":"s","body":"{{name}}"*131000}))' > "$TMP/amp.json"
bad 400 "1 MiB of {{name}} (worst case 33 MB a copy)" '' -H 'Content-Type: application/json' --data-binary @"$TMP/amp.json"
$PY -c 'import json; print(json.dumps({"from":"a@b.test","subject":"s","body":"b","html":"{{email_id}}"*1500}))' > "$TMP/amp2.json"
bad 400 "html whose escaped worst case is over the limit" '' -H 'Content-Type: application/json' --data-binary @"$TMP/amp2.json"
r=$(http GET "$W/emails")
eq "no email queued by a bad request" "$(jget "${r#* }" 'len(j)')" 4
eq "unknown email id -> 404" "$(http GET "$W/emails/999" | cut -d' ' -f1)" 404
eq "non-numeric email id -> 404" "$(http GET "$W/emails/abc" | cut -d' ' -f1)" 404
eq "pause of an unknown email -> 404" "$(http POST "$W/emails/999/pause" "" | cut -d' ' -f1)" 404
eq "GET on /send -> 405" "$(http GET "$W/send" | cut -d' ' -f1)" 405
eq "rate-limit without a body -> 400" "$(http POST "$W/emails/$EID/rate-limit" "" | cut -d' ' -f1)" 400
eq "rate-limit with tpm as a string -> 400" "$(http POST "$W/emails/$EID/rate-limit" '{"tpm":"x"}' | cut -d' ' -f1)" 400
eq "/dlq?email_id=abc -> 400" "$(http GET "$W/dlq?email_id=abc" | cut -d' ' -f1)" 400

# --- a From with a UTF-8 domain goes out in its A-label form (it used to be
# accepted, then every copy dead-lettered on its Message-ID)
r=$(http POST "$W/send" '{"from":"news@b\u00fccher.test","subject":"IDN","body":"b"}')
eq "From with a UTF-8 domain -> 202" "${r%% *}" 202
EI=$(jget "${r#* }" 'j["email_id"]')
wait_for 60 bash -c "[ \"\$(curl -s $W/emails/$EI | $PY -c 'import json,sys; p=json.load(sys.stdin)[\"progress\"]; print(p[\"sent\"], p[\"dead\"])')\" = '1001 0' ]"
ok $? "  ... every copy sent, none dead-lettered"
f=$(grep -l '^Subject: IDN$' "$TMP"/sink3/* | head -1)
check "  ... From: news@xn--bcher-kva.test" -- grep -q '^From: .*news@xn--bcher-kva\.test' "$f"
check "  ... envelope sender in its A-label form" -- grep -q '^X-Mail-Args: <news@xn--bcher-kva\.test>' "$f"

# --- an import with duplicates in the file, a registered and a suppressed
# address: each new user registered once (the first row wins), backfilled
# unless suppressed, one event each
r=$(http POST "$W/suppressions" '{"email_id":"supp@imp.test","reason":"manual"}')
eq "supp@imp.test suppressed -> 201" "${r%% *}" 201
printf 'name,email_id\nFirst,dup@imp.test\nSecond,DUP@imp.test\nThird,dup@imp.test\nLate again,late@late.test\nSupp,supp@imp.test\nNew,new@imp.test\n' > "$TMP/dups.csv"
r=$(curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/dups.csv" "$W/users/import")
eq "import: 3 imported, 3 duplicates (two in the file, one registered before)" "$(jget "$r" '[j["imported"], j["duplicates"]]')" "[3, 3]"
r=$(http GET "$W/users?limit=1000&offset=1000")
eq "  ... the first row of an address is the one kept" \
  "$(jget "${r#* }" 'sorted((u["email_id"], u["name"]) for u in j if u["email_id"].lower().endswith("@imp.test"))')" \
  '[["dup@imp.test", "First"], ["new@imp.test", "New"], ["supp@imp.test", "Supp"]]'
wait_for 30 bash -c "[ \$(cat $TMP/sink3/* | grep -ci '^X-Rcpt-Args: <[a-z]*@imp.test>') -ge 10 ]"
eq "  ... the two not suppressed receive the five earlier emails, supp@ none" \
  "$(rcpts "$TMP/sink3" | grep -i '@imp.test$' | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" "dup@imp.test=5 new@imp.test=5 "
eq "  ... progress counts the two backfilled copies" "$(progress "$EID")" "1003 0 0 0 done"
wait_for 30 bash -c "[ \$(kcat -b $BROKERS -C -t emailId-events -e -q -f '%s\n' 2>/dev/null | grep 'user.registered' | grep -c '@imp.test\"') -ge 3 ]"
eq "  ... one user.registered event per new user, with the kept name" \
  "$(kcat -b "$BROKERS" -C -t emailId-events -e -q -f '%s\n' 2>/dev/null | grep '@imp.test"' | $PY -c 'import json, sys; print(sorted((j["email_id"], j["name"]) for j in map(json.loads, sys.stdin) if j["type"] == "user.registered"))')" \
  "[('dup@imp.test', 'First'), ('new@imp.test', 'New'), ('supp@imp.test', 'Supp')]"
r=$(http POST "$W/send" '{"from":"noreply@sender.test","subject":"After the import","body":"b"}')
eq "  ... a broadcast after it counts 1003 recipients (1004 users, one suppressed)" "$(jget "${r#* }" 'j["recipients"]')" 1003

stop_named warmup; eq "warmup exits 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup
stop_pid "$SINK_PID"; stop_pid "$BROKER_PID"
finish
