#!/bin/bash
# test_messages.sh - templates (immutable versions, defaults, limits), user
# attributes, placeholders checked at send time, POST /messages through the
# real Postfix smtp-sink (filled, escaped, its Message-ID answered, replayed
# by Idempotency-Key), the email-send topic on the dev broker (queued and
# refused requests), and high priority ahead of a running broadcast.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
SP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
start_smtp_sink "$SP" "$TMP/sink" --dump; ok $? "smtp-sink starts"
# a broadcast keeps the client's queue of claimed copies deep (4 connections
# x 64 x 4 = 1024 copies) against at most 3 batches in flight elsewhere
SMTP=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP SMTP_TLS=none WORKERS=4
      SEND_BATCH=64 MESSAGE_ID_DOMAIN=warmup.test KAFKA_SEND_TOPIC=email-send)
start_warmup warmup "$WP" "${SMTP[@]}" LOG_LEVEL=info; ok $? "warmup-service starts"
code() { local r; r=$(http "$@"); echo "${r%% *} $(jget "${r#* }" 'j.get("error",{}).get("code","")' 2>/dev/null)"; }
# msgfile MESSAGE-ID - the dumped message holding that Message-ID
msgfile() { grep -l -F "Message-ID: $1" "$TMP"/sink/msg.* 2>/dev/null | head -1; }

# --- templates: versions are immutable
r=$(http POST "$W/templates" '{"name":"welcome","subject":"Hi {{name}} on {{plan}}","text":"Dear {{name}}, {{company}} says {{greeting}}.","html":"<p>{{greeting}} from {{company}}</p>","defaults":{"company":"Acme","greeting":"hello"},"from":"app@sender.test","from_name":"Acme App"}')
eq "POST /templates -> 201 version 1" "${r%% *} $(jget "${r#* }" '[j["name"], j["version"]]')" '201 ["welcome", 1]'
eq "POST of an existing name -> 409" "$(code POST "$W/templates" '{"name":"welcome","subject":"x","text":"y"}')" "409 template_exists"
r=$(http PUT "$W/templates/welcome" '{"subject":"V2 {{name}}","text":"two","from":"app@sender.test"}')
eq "PUT adds version 2" "${r%% *} $(jget "${r#* }" 'j["version"]')" "201 2"
eq "PUT of an unknown name -> 404" "$(code PUT "$W/templates/nope" '{"subject":"x","text":"y"}')" "404 unknown_template"
r=$(curl -s "$W/templates/welcome?version=1")
eq "version 1 unchanged by version 2" "$(jget "$r" '[j["version"], j["subject"], j["defaults"]["company"]]')" '[1, "Hi {{name}} on {{plan}}", "Acme"]'
eq "GET /templates/welcome is the latest" "$(jget "$(curl -s "$W/templates/welcome")" 'j["version"]')" 2
eq "GET /templates lists the latest of each" "$(jget "$(curl -s "$W/templates")" '[(t["name"], t["version"]) for t in j]')" '[["welcome", 2]]'
eq "unknown version -> 404" "$(code GET "$W/templates/welcome?version=9")" "404 unknown_template"
eq "bad version -> 400" "$(code GET "$W/templates/welcome?version=x")" "400 invalid_field"
eq "a name with a slash or space -> 400" "$(code POST "$W/templates" '{"name":"a b","subject":"x","text":"y"}')" "400 invalid_field"
eq "CR/LF in the subject -> 400" "$(code POST "$W/templates" '{"name":"t2","subject":"x\r\nBcc: a@b.c","text":"y"}')" "400 invalid_field"
eq "defaults not an object -> 400" "$(code POST "$W/templates" '{"name":"t2","subject":"x","text":"y","defaults":[1]}')" "400 invalid_field"
eq "a nested default -> 400" "$(code POST "$W/templates" '{"name":"t2","subject":"x","text":"y","defaults":{"a":{"b":1}}}')" "400 invalid_field"
eq "neither text nor html -> 400" "$(code POST "$W/templates" '{"name":"t2","subject":"x"}')" "400 invalid_field"
eq "an unknown field -> 400" "$(code POST "$W/templates" '{"name":"t2","subject":"x","text":"y","colour":"red"}')" "400 invalid_field"
$PY -c 'import json; print(json.dumps({"name":"t2","subject":"x","text":"x" * 300000}))' > "$TMP/big.json"
eq "a template over 256 KiB -> 413" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/big.json" "$W/templates")" 413
eq "nothing of the refused templates stored" "$(jget "$(curl -s "$W/templates")" 'len(j)')" 1
http POST "$W/templates" '{"name":"nofrom","subject":"No from","text":"x"}' >/dev/null

# --- attributes
eq "register with attributes -> 201" "$(code POST "$W/register" '{"name":"Alice","email_id":"alice@a.test","attributes":{"plan":"pro","seats":3}}')" "201 "
eq "register Bob without attributes" "$(code POST "$W/register" '{"name":"Bob","email_id":"bob@b.test"}')" "201 "
eq "attributes not an object -> 400" "$(code POST "$W/register" '{"name":"C","email_id":"c@c.test","attributes":"pro"}')" "400 invalid_field"
eq "an attribute named name -> 400" "$(code POST "$W/register" '{"name":"C","email_id":"c@c.test","attributes":{"name":"x"}}')" "400 invalid_field"
long=$($PY -c 'print("y" * 5000)')
eq "attributes over 4 KiB -> 400" "$(code POST "$W/register" "{\"name\":\"C\",\"email_id\":\"c@c.test\",\"attributes\":{\"a\":\"$long\"}}")" "400 invalid_field"
eq "the refused registrations stored nothing" "$(jget "$(curl -s "$W/users")" '[(u["email_id"], u.get("attributes")) for u in j]')" '[["alice@a.test", {"plan": "pro", "seats": 3}], ["bob@b.test", null]]'

# --- /send: a placeholder some user has no value for
r=$(http POST "$W/send" '{"from":"news@sender.test","subject":"For {{plan}}","body":"b"}')
eq "/send with {{plan}} Bob lacks -> 400 naming it" "${r%% *} $(jget "${r#* }" '[j["error"]["code"], "{{plan}}" in j["error"]["message"], "bob@b.test" in j["error"]["message"]]')" '400 ["missing_placeholder", true, true]'
eq "and no email stored" "$(jget "$(curl -s "$W/emails")" 'len(j)')" 0

# --- POST /messages
r=$(http POST "$W/messages" '{"to":"alice@a.test","template":"welcome","version":1,"data":{"greeting":"<b>hi</b> & co"}}')
eq "POST /messages -> 202" "${r%% *}" 202
MID=$(jget "${r#* }" 'j["message_id"]')
check "the answer is the copy's Message-ID" -- bash -c "[[ '$MID' =~ ^\<email-[0-9]+\.[0-9a-f]{16}@warmup\.test\>$ ]]"
wait_for 20 test -n "$(msgfile "$MID")"; ok $? "the copy reaches smtp-sink with that Message-ID"
F=$(msgfile "$MID")
eq "subject filled from the user's attributes" "$(grep -m1 '^Subject:' "$F")" "Subject: Hi Alice on pro"
$PY - "$F" > "$TMP/m1.out" 2>&1 <<'PY'
import email, sys
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=policy.default)
assert m["From"] == "Acme App <app@sender.test>", m["From"]
text = m.get_body(("plain",)).get_content()
html = m.get_body(("html",)).get_content()
assert "Dear Alice, Acme says <b>hi</b> & co." in text, text
assert "<p>&lt;b&gt;hi&lt;/b&gt; &amp; co from Acme</p>" in html, html
print("ok")
PY
eq "text: data and defaults as they are; html: data escaped" "$(tail -1 "$TMP/m1.out")" ok
r1=$(http POST "$W/messages" '{"to":"dave@d.test","template":"welcome","version":1,"data":{"plan":"free"}}' -H 'Idempotency-Key: order-42')
r2=$(http POST "$W/messages" '{"to":"dave@d.test","template":"welcome","version":1,"data":{"plan":"free"}}' -H 'Idempotency-Key: order-42')
M1=$(jget "${r1#* }" 'j["message_id"]'); M2=$(jget "${r2#* }" 'j["message_id"]')
eq "the same Idempotency-Key answers the same copy" "${r2%% *} $M2 $(jget "${r2#* }" 'j.get("replayed")')" "202 $M1 True"
wait_for 20 test -n "$(msgfile "$M1")"; ok $? "a recipient who is not a user gets the copy"
sleep 1
eq "and exactly one copy of it" "$(grep -l 'dave@d.test' "$TMP"/sink/msg.* | wc -l)" 1
r=$(http POST "$W/messages" '{"to":"zoe@z.test","template":"welcome","version":1,"data":{"name":"Zoë Z","plan":"solo"}}')
MZ=$(jget "${r#* }" 'j["message_id"]')
wait_for 20 test -n "$(msgfile "$MZ")"; ok $? "a message naming its recipient in data is sent"
F=$(msgfile "$MZ")
$PY - "$F" > "$TMP/mz.out" 2>&1 <<'PY'
import email, sys
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=policy.default)
assert m["Subject"] == "Hi Zoë Z on solo", m["Subject"]
assert m["To"] == "Zoë Z <zoe@z.test>", m["To"]
print("ok")
PY
eq "data's name fills {{name}} and the To display name" "$(tail -1 "$TMP/mz.out")" ok
eq "a name in data with CR/LF -> 400" "$(code POST "$W/messages" '{"to":"zoe@z.test","template":"welcome","data":{"name":"Z\r\nBcc: x@y.z","plan":"x"}}')" "400 invalid_field"
eq "a placeholder with no value -> 400 naming it" "$(jget "$(http POST "$W/messages" '{"to":"erin@e.test","template":"welcome","version":1}' | cut -d' ' -f2-)" '[j["error"]["code"], "{{plan}}" in j["error"]["message"]]')" '["missing_placeholder", true]'
eq "unknown template -> 400" "$(code POST "$W/messages" '{"to":"erin@e.test","template":"nope"}')" "400 unknown_template"
eq "unknown version -> 400" "$(code POST "$W/messages" '{"to":"erin@e.test","template":"welcome","version":7}')" "400 unknown_template"
eq "a template without from -> 400" "$(code POST "$W/messages" '{"to":"erin@e.test","template":"nofrom"}')" "400 no_from"
eq "bad priority -> 400" "$(code POST "$W/messages" '{"to":"erin@e.test","template":"welcome","priority":"urgent"}')" "400 invalid_field"
eq "bad address -> 400" "$(code POST "$W/messages" '{"to":"erin","template":"welcome"}')" "400 invalid_field"
eq "data not an object -> 400" "$(code POST "$W/messages" '{"to":"erin@e.test","template":"welcome","data":[1]}')" "400 invalid_field"
eq "a bad Idempotency-Key -> 400" "$(code POST "$W/messages" '{"to":"erin@e.test","template":"welcome"}' -H "Idempotency-Key: $(printf 'k%.0s' {1..300})")" "400 invalid_field"
http POST "$W/suppressions" '{"email_id":"sup@e.test","reason":"manual"}' >/dev/null
eq "a suppressed address -> 409" "$(code POST "$W/messages" '{"to":"sup@e.test","template":"welcome","data":{"plan":"x"}}')" "409 address_suppressed"

# --- the email-send topic: one queued, two refused with email.failed
printf '%s\n' \
  'frank@f.test	{"userId":7,"emailType":"welcome","version":1,"recipient":"frank@f.test","templateData":{"plan":"team"},"priority":"high"}' \
  'gina@g.test	{"userId":8,"emailType":"nope","recipient":"gina@g.test"}' \
  'x	{not json' > "$TMP/send.txt"
kcat -P -b "$BROKERS" -t email-send -K $'\t' < "$TMP/send.txt" 2>>"$TMP/kcat.err"
wait_for 30 bash -c "grep -q 'frank@f.test' $TMP/sink/msg.* 2>/dev/null"; ok $? "an email-send request is sent"
F=$(grep -l 'frank@f.test' "$TMP"/sink/msg.* | head -1)
eq "with its templateData (no name: not a user)" "$(grep -m1 '^Subject:' "$F")" "Subject: Hi  on team"
wait_for 30 bash -c "[ \$(kcat -b $BROKERS -C -t email-events -e -q -f '%s\n' 2>/dev/null | grep -c '\"email_id\":0') -ge 2 ]"
ok $? "the refused requests are answered on email-events"
kcat -b "$BROKERS" -C -t email-events -e -q -f '%s\n' 2>/dev/null | grep '"email_id":0' > "$TMP/refused.txt"
$PY - "$TMP/refused.txt" > "$TMP/ref.out" 2>&1 <<'PY'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
assert len(evs) == 2, evs
g = [e for e in evs if e["recipient"] == "gina@g.test"][0]
assert g["type"] == "email.failed" and "no template 'nope'" in g["smtp_reply"], g
assert g["message_id"].startswith("<send.") and g["message_id"] == g["broadcast_id"], g
bad = [e for e in evs if e["recipient"] != "gina@g.test"][0]
assert bad["type"] == "email.failed" and bad["smtp_reply"], bad
print("ok")
PY
eq "email.failed with the reason, email_id 0" "$(tail -1 "$TMP/ref.out")" ok
M=$(curl -s "$W/metrics")
eq "email_send_requests_total counts them" "$(echo "$M" | grep -E '^email_send_requests_total\{result="(queued|refused)"\}' | sort | tr '\n' ' ')" 'email_send_requests_total{result="queued"} 1 email_send_requests_total{result="refused"} 2 '

# --- priority: a high-priority message goes ahead of a running broadcast
# (posted while the broadcast's claimed copies fill the client's queue)
$PY -c 'print("name,email_id"); [print(f"U{i},u{i}@bulk{i%5}.test") for i in range(5000)]' > "$TMP/users.csv"
curl -s -H 'Content-Type: text/csv' --data-binary @"$TMP/users.csv" "$W/users/import" >/dev/null
r=$(http POST "$W/send" '{"from":"news@sender.test","subject":"Bulk {{name}}","body":"b"}')
BID=$(jget "${r#* }" 'j["email_id"]')
rn=$(http POST "$W/messages" '{"to":"norm@p.test","template":"welcome","version":1,"data":{"plan":"n"}}')
rh=$(http POST "$W/messages" '{"to":"high@p.test","template":"welcome","version":1,"data":{"plan":"h"},"priority":"high"}')
MN=$(jget "${rn#* }" 'j["message_id"]'); MH=$(jget "${rh#* }" 'j["message_id"]')
wait_for 60 bash -c "[ -n \"\$(grep -l -F 'Message-ID: $MN' $TMP/sink/msg.* 2>/dev/null)\" ] && [ -n \"\$(grep -l -F 'Message-ID: $MH' $TMP/sink/msg.* 2>/dev/null)\" ]"
ok $? "both messages are sent during the broadcast"
# how many bulk copies reached the sink between a message's commit (its
# "message queued" log line) and its own arrival (the dumped file's time)
$PY - "$TMP/sink" "$TMP/warmup/out.log" "$MN" "$MH" > "$TMP/prio.out" 2>&1 <<'PY'
import datetime, os, sys
d, log, mn, mh = sys.argv[1:5]
queued = {}
for line in open(log, encoding="utf-8", errors="replace"):
    for mid in (mn, mh):
        if "message queued" in line and mid in line:
            t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
            queued[mid] = t.replace(tzinfo=datetime.timezone.utc).timestamp()
bulk, arrived = [], {}
for f in os.listdir(d):
    if not f.startswith("msg."):
        continue
    p = os.path.join(d, f)
    t = open(p, "rb").read().decode("utf-8", "replace")
    m = os.stat(p).st_mtime
    if "Subject: Bulk" in t:
        bulk.append(m)
    for mid in (mn, mh):
        if mid in t:
            arrived[mid] = m
def ahead(mid):
    return sum(1 for m in bulk if queued[mid] < m < arrived[mid])
# both see the copies that go while their own claim waits for the
# dispatcher and the writer's transactions (long under the sanitizers);
# the normal one also waits behind the claimed copies queued before it
# (up to 1024), the high one only behind batches in flight
print(ahead(mh), ahead(mn), len(bulk) < 5000 or max(bulk) > arrived[mh])
PY
read -r AH AN RUNNING < <(tail -1 "$TMP/prio.out")
check "the high-priority message overtook the queued bulk copies ($AH went between its commit and its arrival, $AN for the normal one)" -- \
  test "${AN:-0}" -ge $((${AH:-9999} + 100))
eq "the broadcast was still running when the high one went" "$RUNNING" True

stop_named warmup; eq "warmup exits 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup
finish
