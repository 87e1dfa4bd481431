#!/bin/bash
# test_campaigns.sh - campaigns (DESIGN 9.5) end to end through the real
# Postfix smtp-sink and the dev broker: a template with defaults, users
# with attributes, an A/B campaign over an attribute audience paused
# before start, every recipient one copy with its variant's subject and
# filled placeholders, exact progress per variant, email.sent events
# carrying campaign and variant, rate-limit split by weight, pause and
# resume, dead letters reconciled, an uploaded list (refused before its
# import; its columns as the copies' data; skipped when the upload
# endpoints are absent), and every bad request a clear 4xx with nothing
# written.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"

cprog() { jget "$(curl -s "$W/campaigns/$1")" "$2"; }
ncamp() { jget "$(curl -s "$W/campaigns?limit=1000")" 'len(j)'; }
nemails() { jget "$(curl -s "$W/emails?limit=1000")" 'len(j)'; }
sent_of() { cprog "$1" 'j["progress"]["sent"]'; }

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
SP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
start_smtp_sink "$SP" "$TMP/sink1" --dump; ok $? "smtp-sink starts"
SMTP=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP SMTP_TLS=none WORKERS=2
      RETRY_BASE_MS=200 RETRY_MAX=2 MESSAGE_ID_DOMAIN=warmup.test)
start_warmup warmup "$WP" "${SMTP[@]}" LOG_LEVEL=info; ok $? "warmup-service starts"

# --- a template and 60 users: 40 pro (30 in a.test, 10 in b.test), 20 free
r=$(http POST "$W/templates" '{"name":"promo","subject":"Default for {{name}}","text":"Hello {{name}}, your plan is {{plan}} at {{company}}.","html":"<p>{{name}}: {{plan}} at {{company}}</p>","defaults":{"company":"Acme"}}')
eq "POST /templates -> 201" "${r%% *}" 201
r=$(http POST "$W/templates" '{"name":"city","subject":"Hi","text":"You live in {{city}}."}')
eq "a second template with {{city}} and no default" "${r%% *}" 201
for i in $(seq 1 60); do
  if [ "$i" -le 40 ]; then plan=pro; else plan=free; fi
  if [ "$i" -le 30 ] || [ "$i" -gt 40 ]; then dom=a.test; else dom=b.test; fi
  extra=""; [ "$i" = 5 ] && extra=',"city":"Paris"'
  echo "{\"name\":\"User $i\",\"email_id\":\"u$i@$dom\",\"attributes\":{\"plan\":\"$plan\",\"n\":$i$extra}}"
done > "$TMP/users.jsonl"
fails=0
while read -r u; do r=$(http POST "$W/register" "$u"); [ "${r%% *}" = 201 ] || fails=$((fails + 1)); done < "$TMP/users.jsonl"
eq "60 users with attributes registered" "$fails" 0

# --- bad requests: 4xx with a code, no campaign stored
C0=$(ncamp)
bad() { local want=$1 name=$2 b=$3 r
  r=$(http POST "$W/campaigns" "$b")
  if [ "${r%% *}" = "$want" ] && [ -n "$(jget "${r#* }" 'j["error"]["code"]')" ]; then ok 0 "$name -> $want"
  else ok 1 "$name -> $want"; echo "#   got $r"; fi; }
V='"name":"x","from":"news@acme.test","template":"promo"'
bad 404 "unknown template" '{"name":"x","from":"news@acme.test","template":"nope","audience":{"all":true}}'
bad 404 "unknown template version" "{$V,\"version\":9,\"audience\":{\"all\":true}}"
bad 400 "no audience" "{$V}"
bad 400 "audience with two forms" "{$V,\"audience\":{\"all\":true,\"upload\":true}}"
bad 400 "audience with no form" "{$V,\"audience\":{}}"
bad 400 "audience an unknown form" "{$V,\"audience\":{\"everyone\":true}}"
bad 400 "audience all false" "{$V,\"audience\":{\"all\":false}}"
bad 400 "audience a string" "{$V,\"audience\":\"all\"}"
bad 400 "domains empty" "{$V,\"audience\":{\"domains\":[]}}"
bad 400 "domains not a list" "{$V,\"audience\":{\"domains\":\"a.test\"}}"
bad 400 "domains holding an invalid domain" "{$V,\"audience\":{\"domains\":[\"a.test\",\"not a domain\"]}}"
bad 400 "domains holding a number" "{$V,\"audience\":{\"domains\":[5]}}"
bad 400 "attributes not an object" "{$V,\"audience\":{\"attributes\":[\"plan\"]}}"
bad 400 "attributes empty" "{$V,\"audience\":{\"attributes\":{}}}"
bad 400 "attribute value an object" "{$V,\"audience\":{\"attributes\":{\"plan\":{\"a\":1}}}}"
bad 400 "attribute value null" "{$V,\"audience\":{\"attributes\":{\"plan\":null}}}"
bad 400 "attribute name with a quote" "{$V,\"audience\":{\"attributes\":{\"pl\\\"an\":\"pro\"}}}"
A='"audience":{"all":true}'
bad 400 "variants empty" "{$V,$A,\"variants\":[]}"
bad 400 "variant names taken twice" "{$V,$A,\"variants\":[{\"name\":\"A\"},{\"name\":\"A\"}]}"
bad 400 "variant without a name" "{$V,$A,\"variants\":[{\"subject\":\"s\"}]}"
bad 400 "variant name empty" "{$V,$A,\"variants\":[{\"name\":\"\"}]}"
bad 400 "variant name over 64 bytes" "{$V,$A,\"variants\":[{\"name\":\"$(printf 'v%.0s' $(seq 65))\"}]}"
bad 400 "variant weight 0" "{$V,$A,\"variants\":[{\"name\":\"A\",\"weight\":0}]}"
bad 400 "variant weight negative" "{$V,$A,\"variants\":[{\"name\":\"A\",\"weight\":-5}]}"
bad 400 "variant weight a string" "{$V,$A,\"variants\":[{\"name\":\"A\",\"weight\":\"50\"}]}"
bad 400 "variant subject with CRLF" "{$V,$A,\"variants\":[{\"name\":\"A\",\"subject\":\"s\\r\\nBcc: v@x.test\"}]}"
bad 400 "variant with an unknown field" "{$V,$A,\"variants\":[{\"name\":\"A\",\"share\":5}]}"
bad 400 "from with CRLF" "{\"name\":\"x\",\"from\":\"a@b.test\\r\\nBcc: v@x.test\",\"template\":\"promo\",$A}"
bad 400 "from not an address" "{\"name\":\"x\",\"from\":\"nope\",\"template\":\"promo\",$A}"
bad 400 "no from (the template names none)" "{\"name\":\"x\",\"template\":\"promo\",$A}"
bad 400 "from_name with LF" "{$V,$A,\"from_name\":\"N\\nX: y\"}"
bad 400 "tpm negative" "{$V,$A,\"tpm\":-1}"
bad 400 "tpm a string" "{$V,$A,\"tpm\":\"600\"}"
bad 400 "unknown smtp_client" "{$V,$A,\"smtp_client\":\"nope\"}"
bad 400 "unknown field" "{$V,$A,\"schedule\":\"now\"}"
bad 400 "no name" '{"from":"news@acme.test","template":"promo","audience":{"all":true}}'
bad 400 "not JSON" '{"name":'
r=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary '{}' "$W/campaigns")
eq "no Content-Type -> 415" "$r" 415
eq "no campaign stored by any bad request" "$(ncamp)" "$C0"

# --- start refusals: 4xx with the reason, nothing written
E0=$(nemails)
r=$(http POST "$W/campaigns" '{"name":"gold","from":"news@acme.test","template":"promo","audience":{"attributes":{"plan":"gold"}}}')
eq "a campaign over plan = gold -> 201 draft" "$(jget "${r#* }" '[j["state"], j["progress"]["status"]]')" '["draft", "draft"]'
CG=$(jget "${r#* }" 'j["id"]')
r=$(http POST "$W/campaigns/$CG/start" "")
eq "start with nobody matching -> 409 with the reason" "${r%% *} $(jget "${r#* }" '[j["error"]["code"], j["error"]["message"]]')" '409 ["empty_audience", "no user has plan = gold"]'
r=$(http POST "$W/campaigns" '{"name":"dom","from":"news@acme.test","template":"promo","audience":{"domains":["nowhere.test"]}}')
r=$(http POST "$W/campaigns/$(jget "${r#* }" 'j["id"]')/start" "")
eq "start over a domain without users -> 409" "${r%% *} $(jget "${r#* }" 'j["error"]["message"]')" "409 no user has an address in nowhere.test"
r=$(http POST "$W/campaigns" '{"name":"list","from":"news@acme.test","template":"promo","audience":{"upload":true}}')
r=$(http POST "$W/campaigns/$(jget "${r#* }" 'j["id"]')/start" "")
eq "start over a list never uploaded -> 409" "${r%% *} $(jget "${r#* }" '"not been imported yet" in j["error"]["message"]')" "409 True"
r=$(http POST "$W/campaigns" '{"name":"city","from":"news@acme.test","template":"city","audience":{"domains":["a.test"]}}')
CC=$(jget "${r#* }" 'j["id"]')
r=$(http POST "$W/campaigns/$CC/start" "")
eq "a placeholder without value or default -> 400 naming it" "${r%% *} $(jget "${r#* }" 'j["error"]["code"]')" "400 missing_placeholder"
eq "  ... the message" "$(jget "${r#* }" 'j["error"]["message"]')" "placeholder {{city}} has no value for 49 recipients (e.g. u1@a.test) and no default"
eq "  ... the campaign stays a draft" "$(cprog "$CC" 'j["state"]')" draft
r=$(http POST "$W/campaigns/$CG/start" "")
eq "nothing written by the refused starts (no email row)" "$(nemails)" "$E0"
eq "no copy sent" "$(ls "$TMP/sink1" | grep -c '^msg\.')" 0
r=$(http POST "$W/campaigns/99999/start" "")
eq "start an unknown campaign -> 404" "${r%% *}" 404
r=$(http POST "$W/campaigns/abc/start" "")
eq "start a malformed id -> 404" "${r%% *}" 404
r=$(http GET "$W/campaigns/99999")
eq "GET an unknown campaign -> 404" "${r%% *}" 404

# --- an A/B campaign over plan = pro (40 users), paused before start
r=$(http POST "$W/campaigns" '{"name":"Spring","from":"news@acme.test","template":"promo","audience":{"attributes":{"plan":"pro"}},"variants":[{"name":"A","subject":"A for {{name}} ({{plan}})","weight":3},{"name":"B","weight":1}],"tpm":0}')
eq "A/B campaign -> 201" "${r%% *}" 201
C1=$(jget "${r#* }" 'j["id"]')
eq "  ... its variants in the draft" "$(jget "${r#* }" '[(v["name"], v["weight"], v["email_id"]) for v in j["variants"]]')" '[["A", 3, null], ["B", 1, null]]'
r=$(http POST "$W/campaigns/$C1/pause" "")
eq "pause the draft -> 200" "${r%% *} $(jget "${r#* }" '[j["paused"], j["state"]]')" '200 [true, "draft"]'
r=$(http POST "$W/campaigns/$C1/start" "")
eq "start -> 200 paused" "${r%% *} $(jget "${r#* }" '[j["state"], j["progress"]["total"], len(j["email_ids"])]')" '200 ["paused", 40, 2]'
EA=$(jget "${r#* }" 'j["variants"][0]["email_id"]'); EB=$(jget "${r#* }" 'j["variants"][1]["email_id"]')
eq "  ... per variant: total and pending by weight" "$(jget "${r#* }" '[(v["progress"]["total"], v["progress"]["pending"], v["progress"]["status"]) for v in j["variants"]]')" '[[30, 30, "paused"], [10, 10, "paused"]]'
eq "  ... the emails are campaign rows (GET /emails/{id})" "$(jget "$(curl -s "$W/emails/$EA")" '[j["subject"], j["progress"]["status"]]')" '["A for {{name}} ({{plan}})", "paused"]'
r=$(http POST "$W/campaigns/$C1/start" "")
eq "start twice -> 409 naming the state" "${r%% *} $(jget "${r#* }" '[j["error"]["code"], j["error"]["message"]]')" "409 [\"not_draft\", \"campaign $C1 is paused: start works on a draft only\"]"
sleep 1.5
eq "nothing sent while paused" "$(ls "$TMP/sink1" | grep -c '^msg\.')" 0
r=$(http POST "$W/campaigns/$C1/resume" "")
eq "resume -> 200" "${r%% *}" 200
wait_for 60 bash -c "[ \"\$(curl -s $W/campaigns/$C1 | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"status\"])')\" = done ]"
ok $? "the campaign reaches done"
eq "progress exact" "$(cprog "$C1" '[j["progress"][k] for k in ("total","sent","failed","pending","dead","suppressed","rate_limit","status")]')" '[40, 40, 0, 0, 0, 0, 0, "done"]'
eq "progress per variant" "$(cprog "$C1" '[[v["name"], v["email_id"]] + [v["progress"][k] for k in ("total","sent","failed","pending","status")] for v in j["variants"]]')" "[[\"A\", $EA, 30, 30, 0, 0, \"done\"], [\"B\", $EB, 10, 10, 0, 0, \"done\"]]"

# every pro user exactly one copy, the variant's subject, placeholders filled
$PY - "$TMP/sink1" > "$TMP/copies.out" 2>&1 <<'PY'
import email, email.policy, os, sys, collections
d = sys.argv[1]
got = collections.Counter(); subj = {}
for name in os.listdir(d):
    if not name.startswith("msg."):
        continue
    raw = open(os.path.join(d, name), "rb").read()
    rcpts = [l[14:].split(b">")[0].decode() for l in raw.split(b"\n") if l.startswith(b"X-Rcpt-Args: <")]
    m = email.message_from_bytes(raw, policy=email.policy.default)
    text = m.get_body(("plain",)).get_content(); html = m.get_body(("html",)).get_content()
    for r in rcpts:
        got[r] += 1
        n = int(r.split("@")[0][1:])
        assert f"Hello User {n}, your plan is pro at Acme." in text, (r, text)
        assert f"<p>User {n}: pro at Acme</p>" in html, (r, html)
        subj[r] = str(m["subject"])
want = {f"u{i}@{'a.test' if i <= 30 else 'b.test'}" for i in range(1, 41)}
assert set(got) == want, sorted(set(got) ^ want)
assert all(v == 1 for v in got.values()), [k for k, v in got.items() if v != 1]
a = [r for r, s in subj.items() if s.startswith("A for ")]
b = [r for r, s in subj.items() if s.startswith("Default for ")]
assert len(a) == 30 and len(b) == 10, (len(a), len(b))
for r in a:
    assert subj[r] == f"A for User {int(r.split('@')[0][1:])} (pro)", subj[r]
# users in registration order, weights 3/1: every fourth is B
assert sorted(int(r.split("@")[0][1:]) for r in b) == list(range(4, 41, 4)), sorted(b)
print("copies ok")
PY
ok $? "40 copies: every pro user exactly once, A/B subjects by weight, placeholders filled in text and html"; grep -v 'copies ok' "$TMP/copies.out" | head -3 | sed 's/^/# /'

# email.sent events carry campaign and variant
wait_for 30 bash -c "[ \$(kcat -b $BROKERS -C -t email-events -e -q -f '%s\n' 2>/dev/null | grep -c email.sent) -ge 40 ]"
kcat -b "$BROKERS" -C -t email-events -e -q -f '%s\n' > "$TMP/ev.jsonl" 2>/dev/null
$PY - "$TMP/ev.jsonl" "$C1" "$EA" "$EB" > "$TMP/ev.out" 2>&1 <<'PY'
import json, sys
c1, ea, eb = (int(x) for x in sys.argv[2:5])
seen = {}
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    if e.get("type") != "email.sent" or e["email_id"] not in (ea, eb):
        continue
    assert e["campaign"] == c1, e
    assert e["variant"] == ("A" if e["email_id"] == ea else "B"), e
    seen[e["recipient"]] = e["variant"]
assert len(seen) == 40 and list(seen.values()).count("A") == 30, seen
print("events ok")
PY
ok $? "40 email.sent events with campaign $C1 and variant A or B"; grep -v 'events ok' "$TMP/ev.out" | head -3 | sed 's/^/# /'

# --- rate limit: split by weight; bad bodies
r=$(http POST "$W/campaigns/$C1/rate-limit" '{"tpm":100}')
eq "rate-limit 100 -> 200, split 75/25" "${r%% *} $(jget "${r#* }" '[j["progress"]["rate_limit"]] + [v["progress"]["rate_limit"] for v in j["variants"]]')" '200 [100, 75, 25]'
eq "  ... on the variant's email" "$(jget "$(curl -s "$W/emails/$EB")" 'j["progress"]["tpm"]')" 25
for b in '{}' '{"tpm":-1}' '{"tpm":"9"}' '{"tpm":5,"x":1}' 'nope'; do
  r=$(http POST "$W/campaigns/$C1/rate-limit" "$b"); [ "${r%% *}" = 400 ] || { echo "# $b -> $r"; break; }
done
eq "bad rate-limit bodies -> 400" "${r%% *}" 400
eq "  ... the rate unchanged" "$(cprog "$C1" 'j["tpm"]')" 100
r=$(http POST "$W/campaigns/99999/rate-limit" '{"tpm":5}')
eq "rate-limit an unknown campaign -> 404" "${r%% *}" 404
for p in pause resume reconcile; do r=$(http POST "$W/campaigns/99999/$p" ""); [ "${r%% *}" = 404 ] || break; done
eq "pause, resume, reconcile an unknown campaign -> 404" "${r%% *}" 404

# --- dead letters and reconcile: a campaign over the free users to a server that refuses
stop_pid "$SINK_PID"
start_smtp_sink "$SP" "$TMP/sink2" --dump -f RCPT
r=$(http POST "$W/campaigns" '{"name":"free","from":"news@acme.test","template":"promo","audience":{"attributes":{"plan":"free"}},"tpm":6000}')
C2=$(jget "${r#* }" 'j["id"]')
r=$(http POST "$W/campaigns/$C2/start" "")
eq "start over plan = free -> 200, 20 copies" "${r%% *} $(jget "${r#* }" '[j["progress"]["total"], j["variants"], len(j["email_ids"])]')" '200 [20, [], 1]'
wait_for 60 bash -c "[ \"\$(curl -s $W/campaigns/$C2 | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"dead\"])')\" = 20 ]"
ok $? "every copy dead-lettered on 5xx"
eq "progress: done with 20 dead" "$(cprog "$C2" '[j["progress"][k] for k in ("total","sent","failed","pending","dead","status")]')" '[20, 0, 0, 0, 20, "done"]'
stop_pid "$SINK_PID"
start_smtp_sink "$SP" "$TMP/sink3" --dump
r=$(http POST "$W/campaigns/$C2/pause" "")
eq "pause -> 200" "${r%% *}" 200
r=$(http POST "$W/campaigns/$C2/reconcile" "")
eq "reconcile requeues the 20 dead letters" "${r%% *} $(jget "${r#* }" 'j["requeued"]')" "200 20"
eq "  ... paused: status paused, 20 pending" "$(cprog "$C2" '[j["progress"]["pending"], j["progress"]["status"], j["variants"]]')" '[20, "paused", []]'
sleep 1
eq "  ... nothing sent while paused" "$(ls "$TMP/sink3" | grep -c '^msg\.')" 0
r=$(http POST "$W/campaigns/$C2/resume" "")
wait_for 60 bash -c "[ \"\$(curl -s $W/campaigns/$C2 | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"sent\"])')\" = 20 ]"
ok $? "resumed: the requeued copies are sent"
eq "  ... to the 20 free users" "$(dumped "$TMP/sink3" | cut -f1 | sort -u | wc -l)" 20

# --- an uploaded list (the upload endpoints of DESIGN 9.5): refused before
# its import, then one copy per listed address that is not suppressed,
# its columns as the copy's data, registered or not
r=$(http POST "$W/campaigns" '{"name":"list","from":"news@acme.test","template":"promo","audience":{"upload":true},"variants":[{"name":"A","subject":"List A {{name}} {{plan}}"},{"name":"B","subject":"List B {{name}} {{plan}}"}]}')
CL=$(jget "${r#* }" 'j["id"]')
$PY -c 'print("email_id,name,plan"); [print(f"l{i}@list{i % 2}.test,Listed {i},gold{i}") for i in range(1, 200)]; print("u1@a.test,Again One,silver"); print("L5@List1.test,Five again,tin")' > "$TMP/list.csv"
r=$(http POST "$W/suppressions" '{"email_id":"l7@list1.test","reason":"manual"}')
SIZE=$(stat -c %s "$TMP/list.csv")
r=$(http POST "$W/campaigns/$CL/upload/init" "{\"filename\":\"list.csv\",\"size\":$SIZE,\"content_type\":\"text/csv\"}")
if [ "${r%% *}" != 201 ]; then
  T_N=$((T_N + 1)); echo "ok $T_N - uploaded list # SKIP no upload endpoint (${r%% *})"
else
  U=$(jget "${r#* }" 'j["upload_id"]'); URL=$(jget "${r#* }" 'j["parts"][0]["url"]')
  r=$(http POST "$W/campaigns/$CL/start" "")
  eq "start before the list is uploaded -> 409" "${r%% *} $(jget "${r#* }" '"not been imported yet" in j["error"]["message"]')" "409 True"
  ET=$(curl -s -D - -o /dev/null -T "$TMP/list.csv" "$URL" | sed -n 's/^ETag: "\(.*\)"\r$/\1/Ip')
  r=$(http POST "$W/campaigns/$CL/upload/complete" "{\"upload_id\":\"$U\",\"parts\":[{\"part\":1,\"etag\":\"$ET\"}]}")
  eq "upload complete -> 202" "${r%% *}" 202
  wait_for 30 bash -c "curl -s $W/campaigns/$CL/upload | grep -q '\"state\":\"done\"'"
  ok $? "the list is imported"
  eq "  ... 201 rows, 200 imported, 1 duplicate (another case of an address)" \
    "$(jget "$(curl -s "$W/campaigns/$CL/upload")" '[j["rows"], j["imported"], j["duplicates"]]')" "[201, 200, 1]"
  r=$(http POST "$W/campaigns/$CL/start" "")
  eq "start over the list -> 200, 199 copies (one address suppressed, one listed twice)" "${r%% *} $(jget "${r#* }" '[j["progress"]["total"]] + [v["progress"]["total"] for v in j["variants"]]')" "200 [199, 100, 99]"
  wait_for 60 bash -c "[ \"\$(curl -s $W/campaigns/$CL | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"status\"])')\" = done ]"
  ok $? "the list campaign reaches done"
  dumped "$TMP/sink3" | grep -E '^(l[0-9]+@list[01]\.test|u1@a\.test)'$'\t''List ' | sort > "$TMP/list.got"
  $PY - "$TMP/list.got" > "$TMP/list.out" 2>&1 <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
got = {r[0]: r[1] for r in rows}
want = {f"l{i}@list{i % 2}.test": f"Listed {i} gold{i}" for i in range(1, 200) if i != 7}
want["u1@a.test"] = "Again One silver"
assert len(rows) == len(got) == 199, len(rows)
assert set(got) == set(want), sorted(set(got) ^ set(want))
for r, s in got.items():
    assert s[7:] == want[r] and s[:7] in ("List A ", "List B "), (r, s)
print("list ok")
PY
  ok $? "every listed address one copy (the suppressed none), named and filled from the list's columns"; grep -v 'list ok' "$TMP/list.out" | head -3 | sed 's/^/# /'
fi

# --- listing
r=$(http GET "$W/campaigns?limit=2&offset=0")
eq "GET /campaigns?limit=2 -> 2" "${r%% *} $(jget "${r#* }" 'len(j)')" "200 2"
r=$(http GET "$W/campaigns?limit=0")
eq "GET /campaigns?limit=0 -> 400" "${r%% *}" 400
eq "GET /campaigns lists every campaign" "$(jget "$(curl -s "$W/campaigns")" '[c["id"] for c in j][-3:]')" "[$C1, $C2, $CL]"

stop_named warmup
eq "warmup-service stops cleanly" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup
finish
