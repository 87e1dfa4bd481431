#!/bin/bash
# test_unsubscribe.sh - one-click unsubscribe (RFC 8058) and the suppression
# list, through a real warmup-service, aiosmtpd (STARTTLS + AUTH) capturing
# every message, the dev broker and health-service: the List-Unsubscribe
# headers exact (the token checked by an independent HMAC in Python), the
# public /u/{token} form (GET shows a page and changes nothing, POST from
# another origin suppresses, forged tokens 404, idempotent), the
# user.unsubscribed event, /suppressions, and no copy to a suppressed
# address: broadcast, queued copies (paused, suppressed, resumed) and
# backfill.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"

SECRET=Unsub-test-secret-0123456789
TOKEN_API=api-token-for-unsub-test
AUTH=(-H "Authorization: Bearer $TOKEN_API")
FORM=(-H 'Content-Type: application/x-www-form-urlencoded')

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
gen_certs "$TMP/certs"
SP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
start_smtpd_tls "$SP" "$TMP/smtpd" "$TMP/certs" sender@sender.test:pw; ok $? "aiosmtpd (STARTTLS, AUTH) starts"
PUB=http://unsub.example.invalid:$WP # the public name: reaches the service via Host
printf '%s\n' "$SECRET" > "$TMP/secret"; chmod 600 "$TMP/secret"
SMTP=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=localhost SMTP_PORT=$SP SMTP_TLS=starttls
  SMTP_USERNAME=sender@sender.test SMTP_PASSWORD=pw SMTP_CA_FILE="$TMP/certs/ca.pem" WORKERS=2
  MESSAGE_ID_DOMAIN=sender.test API_TOKEN=$TOKEN_API)

# --- configuration: one without the other stops start-up with one line
startup_error() { # NAME VAR=VALUE... : exit status 2 and the first error line
  mkdir -p "$TMP/$1"
  env PORT="$WP" DB_PATH="$TMP/$1/w.db" KAFKA_BROKERS="$BROKERS" "${@:2}" "$WARMUP_BIN" >"$TMP/$1/out.log" 2>&1 </dev/null
  echo "$? $(grep -m1 -iE 'fatal|error' "$TMP/$1/out.log")"
}
r=$(startup_error only_url PUBLIC_URL=https://mail.acme.test)
check "PUBLIC_URL alone: start-up stops naming UNSUBSCRIBE_SECRET" -- bash -c "[[ '$r' == [1-9]* && '$r' == *UNSUBSCRIBE_SECRET* ]]"
r=$(startup_error only_secret UNSUBSCRIBE_SECRET=$SECRET)
check "UNSUBSCRIBE_SECRET alone: start-up stops naming PUBLIC_URL" -- bash -c "[[ '$r' == [1-9]* && '$r' == *PUBLIC_URL* ]]"
check "  ... and never prints the secret" -- bash -c "! grep -q '$SECRET' $TMP/only_secret/out.log"
r=$(startup_error short PUBLIC_URL=https://mail.acme.test UNSUBSCRIBE_SECRET=short-secret)
check "a secret under 16 bytes is refused" -- bash -c "[[ '$r' == [1-9]*16* ]] && ! grep -q short-secret $TMP/short/out.log"
r=$(startup_error query PUBLIC_URL='https://mail.acme.test/?x=1' UNSUBSCRIBE_SECRET=$SECRET)
check "a PUBLIC_URL with a query is refused" -- bash -c "[[ '$r' == [1-9]*PUBLIC_URL* ]]"

start_warmup warmup "$WP" "${SMTP[@]}" PUBLIC_URL="$PUB/" UNSUBSCRIBE_SECRET_FILE="$TMP/secret" \
  UNSUBSCRIBE_MAILTO=unsub@sender.test LOG_LEVEL=info
ok $? "warmup-service starts with PUBLIC_URL, UNSUBSCRIBE_SECRET_FILE, UNSUBSCRIBE_MAILTO"

api() { http "$1" "$W$2" "${3-}" "${AUTH[@]}" "${@:4}"; }
progress() { jget "$(curl -s "${AUTH[@]}" "$W/emails/$1")" '"%d %d %d %d %d %s" % tuple([j["progress"][k] for k in ("sent","failed","pending","dead","suppressed")] + [j["progress"]["status"]])'; }
wait_done() { wait_for "${2:-60}" bash -c "curl -s -H 'Authorization: Bearer $TOKEN_API' $W/emails/$1 | $PY -c 'import json,sys; sys.exit(json.load(sys.stdin)[\"progress\"][\"status\"] != \"done\")'"; }
# delivered ADDRESS SUBJECT - messages aiosmtpd received for ADDRESS with SUBJECT
delivered() { $PY - "$TMP/smtpd" "$1" "$2" <<'PY'
import email, json, os, sys
d, rcpt, subj = sys.argv[1:]
n = 0
for line in open(os.path.join(d, "log.jsonl")):
    m = json.loads(line)
    if m.get("event") != "message" or rcpt not in m["rcpt"]:
        continue
    with open(m["file"], "rb") as f:
        if email.message_from_binary_file(f)["Subject"] == subj:
            n += 1
print(n)
PY
}
send() { jget "$(api POST /send "{\"from\":\"news@sender.test\",\"subject\":\"$1\",\"body\":\"Hello {{name}}\"${2:+,$2}}" | cut -d' ' -f2-)" 'j["email_id"]'; }

for u in alice@a.test bob@b.test carol@c.test; do
  api POST /register "{\"name\":\"${u%@*}\",\"email_id\":\"$u\"}" >/dev/null
done
E1=$(send "Mail 1")
wait_done "$E1"; ok $? "the first broadcast is sent"
eq "progress counts suppressed (0 yet)" "$(progress "$E1")" "3 0 0 0 0 done"

# --- the headers, exact; the token recomputed independently
$PY - "$TMP/smtpd" "$SECRET" "$PUB" "$E1" > "$TMP/headers.out" 2>&1 <<'PY'
import base64, email, hashlib, hmac, json, os, sys
d, secret, pub, eid = sys.argv[1], sys.argv[2].encode(), sys.argv[3], sys.argv[4]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
seen = {}
for line in open(os.path.join(d, "log.jsonl")):
    m = json.loads(line)
    if m.get("event") != "message":
        continue
    msg = email.message_from_binary_file(open(m["file"], "rb"))
    rcpt = m["rcpt"][0]
    payload = rcpt.encode() + b"\0" + eid.encode()
    tok = b64(payload) + "." + b64(hmac.new(secret, payload, hashlib.sha256).digest())
    lu = msg.get_all("List-Unsubscribe")
    want = f"<{pub}/u/{tok}>, <mailto:unsub@sender.test?subject=unsubscribe-{tok}>"
    got = " ".join(lu[0].split()) if lu else None  # unfolded
    assert lu and len(lu) == 1 and got == want, (got, want)
    assert msg.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"], msg.get_all("List-Unsubscribe-Post")
    seen[rcpt] = tok
assert len(seen) == 3, seen
for r, t in sorted(seen.items()):
    print(r, t)
PY
ok $? "every copy: List-Unsubscribe <PUBLIC_URL/u/token>, <mailto:...?subject=unsubscribe-token> (HMAC checked in Python) and List-Unsubscribe-Post: List-Unsubscribe=One-Click"
grep -v '@' "$TMP/headers.out" | head -5 | sed 's/^/# /'
TA=$(awk '$1 == "alice@a.test" {print $2}' "$TMP/headers.out")
TB=$(awk '$1 == "bob@b.test" {print $2}' "$TMP/headers.out")
PUBHOST=(-H "Host: unsub.example.invalid:$WP")

# --- GET /u/{token}: a page, never an unsubscription
curl -s -D "$TMP/page.h" -o "$TMP/page.html" "${PUBHOST[@]}" "$W/u/$TA"
check "GET /u/{token} -> 200 text/html; charset=utf-8" -- grep -qi '^content-type: text/html; charset=utf-8' "$TMP/page.h"
check "  ... with a restrictive Content-Security-Policy" -- grep -qi "^content-security-policy: default-src 'none'; form-action 'self'" "$TMP/page.h"
check "  ... a confirm button that POSTs, the address shown, no external resource" -- bash -c \
  "grep -q '<form method=\"post\">' $TMP/page.html && grep -q 'value=\"One-Click\"' $TMP/page.html && grep -q 'alice@a.test' $TMP/page.html && ! grep -qiE 'src=|href=|http' $TMP/page.html"
curl -s -o /dev/null -I "${PUBHOST[@]}" "$W/u/$TA"
eq "GET (and HEAD) unsubscribe no one" "$(api GET /suppressions | cut -d' ' -f2-)" "[]"
eq "GET of a forged token -> 404 page" "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$W/u/${TA%?}x")" "404 text/html; charset=utf-8"

# --- POST: forged and damaged tokens are 404 JSON, nothing suppressed
FORGED=$($PY -c "import sys; t=sys.argv[1]; p,m=t.split('.'); print(p+'.'+('A' if m[0]!='A' else 'B')+m[1:])" "$TA")
OTHER=$($PY -c "
import base64,hashlib,hmac,sys
b=lambda x: base64.urlsafe_b64encode(x).rstrip(b'=').decode()
p=b'alice@a.test\0'+sys.argv[1].encode()
print(b(p)+'.'+b(hmac.new(b'another-secret-0123456789',p,hashlib.sha256).digest()))" "$E1")
SWAP="${TB%%.*}.${TA#*.}" # bob's payload, alice's MAC
for t in "$FORGED" "$OTHER" "$SWAP" "${TA%.*}" "${TA:0:20}" "x"; do
  r=$(http POST "$W/u/$t" 'List-Unsubscribe=One-Click' "${FORM[@]}")
  [ "${r%% *}" = 404 ] && [ "$(jget "${r#* }" 'j["error"]["code"]')" = not_found ] || { echo "# $t -> $r"; false; }
done
ok $? "forged MAC, another secret, swapped payload, no MAC, truncated, junk: 404 JSON"
eq "  ... nothing suppressed" "$(api GET /suppressions | cut -d' ' -f2-)" "[]"
eq "a body other than List-Unsubscribe=One-Click -> 400" "$(http POST "$W/u/$TA" 'List-Unsubscribe=No' "${FORM[@]}" | cut -d' ' -f1)" 400
eq "a text/plain body -> 415" "$(http POST "$W/u/$TA" 'List-Unsubscribe=One-Click' -H 'Content-Type: text/plain' | cut -d' ' -f1)" 415
eq "another origin on an API endpoint -> 403 (only /u/ is a public form)" \
  "$(api POST /suppressions '{"email_id":"x@y.test","reason":"manual"}' -H 'Origin: https://evil.example.invalid' | cut -d' ' -f1)" 403

# --- the one-click POST, from a mail provider's origin, to the public name
r=$(http POST "$W/u/$TA" 'List-Unsubscribe=One-Click' "${FORM[@]}" "${PUBHOST[@]}" -H 'Origin: https://mail.provider.example.invalid' -H 'Sec-Fetch-Site: cross-site')
eq "RFC 8058 POST from another origin, no bearer token -> 200" "${r%% *}" 200
eq "  ... answers the entry" "$(jget "${r#* }" '[j["email_id"], j["reason"], len(j["at"]) > 19]')" '["alice@a.test", "unsubscribed", true]'
r=$(api GET /suppressions)
eq "  ... alice is suppressed, reason unsubscribed" "$(jget "${r#* }" '[(x["email_id"], x["reason"]) for x in j]')" '[["alice@a.test", "unsubscribed"]]'
eq "a second POST (empty body) -> 200 (idempotent)" "$(http POST "$W/u/$TA" "" | cut -d' ' -f1)" 200
r=$(curl -s -o "$TMP/done.html" -w '%{http_code}' -X POST "${FORM[@]}" -H 'Accept: text/html' --data 'List-Unsubscribe=One-Click' "$W/u/$TA")
check "the page's own form POST (Accept: text/html) -> 200 page" -- bash -c "[ $r = 200 ] && grep -q 'Unsubscribed' $TMP/done.html"

# --- the event: one user.unsubscribed on emailId-events
wait_for 30 bash -c "kcat -b $BROKERS -C -t emailId-events -e -q -f '%s\n' 2>/dev/null | grep -q user.unsubscribed"
kcat -b "$BROKERS" -C -t emailId-events -e -q -f '%k\t%s\n' 2>/dev/null | grep user.unsubscribed > "$TMP/unsub.tsv"
$PY - "$TMP/unsub.tsv" <<'PY'
import datetime, json, sys
rows = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1])]
assert len(rows) == 1, rows
key, val = rows[0]
e = json.loads(val)
assert list(e) == ["v", "type", "email_id", "reason", "at"], e
assert e["v"] == 1 and e["type"] == "user.unsubscribed" and e["email_id"] == "alice@a.test", e
assert e["reason"] == "unsubscribed" and key == "a.test", (key, e)
datetime.datetime.strptime(e["at"], "%Y-%m-%dT%H:%M:%S.%fZ")
PY
ok $? "exactly one user.unsubscribed (three POSTs): v, type, email_id, reason, at; key = the domain"

# --- /suppressions
r=$(api POST /suppressions '{"email_id":"Bob@B.TEST","reason":"manual"}')
eq "POST /suppressions -> 201 with the entry (domain lower-cased)" "${r%% *} $(jget "${r#* }" '[j["email_id"], j["reason"]]')" '201 ["Bob@b.test", "manual"]'
r=$(api POST /suppressions '{"email_id":"bob@b.test","reason":"complaint"}')
eq "again (any case) -> 200, the first entry kept" "${r%% *} $(jget "${r#* }" 'j["reason"]')" "200 manual"
bad() { local r; r=$(api POST /suppressions "$2" "${@:3}"); eq "$1 -> 400" "${r%% *} $(jget "${r#* }" 'j["error"]["code"]' 2>/dev/null)" "400 ${BADCODE:-invalid_field}"; }
bad "an invalid address" '{"email_id":"not-an-address","reason":"manual"}'
bad "an unknown reason" '{"email_id":"x@y.test","reason":"spam"}'
bad "no reason" '{"email_id":"x@y.test"}'
bad "an unknown field" '{"email_id":"x@y.test","reason":"manual","note":"x"}'
bad "a CRLF in the address" '{"email_id":"x@y.test\r\nBcc: v@x.test","reason":"manual"}'
BADCODE=invalid_json bad "malformed JSON" '{"email_id":'
eq "without the bearer token -> 401" "$(http GET "$W/suppressions" | cut -d' ' -f1)" 401
eq "?limit=0 -> 400" "$(api GET '/suppressions?limit=0' | cut -d' ' -f1)" 400
r=$(api GET '/suppressions?limit=1&offset=1')
eq "?limit=1&offset=1 pages" "$(jget "${r#* }" '[x["email_id"] for x in j]')" '["Bob@b.test"]'
eq "DELETE /suppressions/{address} -> 204" "$(api DELETE /suppressions/bob@B.test | cut -d' ' -f1)" 204
eq "  ... again -> 404" "$(api DELETE /suppressions/bob@b.test | cut -d' ' -f1)" 404
eq "DELETE of a non-address -> 404" "$(api DELETE /suppressions/nothing | cut -d' ' -f1)" 404
api POST /suppressions '{"email_id":"bob@b.test","reason":"hard_bounce"}' >/dev/null

# --- a broadcast after the suppressions: nothing to alice or bob
E2=$(send "Mail 2")
r=$(api GET "/emails/$E2")
wait_done "$E2"; ok $? "the second broadcast is done"
eq "  ... one copy (carol's): 1 sent, none suppressed (never queued)" "$(progress "$E2")" "1 0 0 0 0 done"
eq "  ... aiosmtpd got nothing for alice or bob" "$(delivered alice@a.test "Mail 2") $(delivered bob@b.test "Mail 2") $(delivered carol@c.test "Mail 2")" "0 0 1"

# --- copies already queued: paused, suppressed, resumed
for u in dave@d.test erin@e.test; do api POST /register "{\"name\":\"${u%@*}\",\"email_id\":\"$u\"}" >/dev/null; done
wait_for 30 bash -c "[ \$(curl -s -H 'Authorization: Bearer $TOKEN_API' $W/emails/$E2 | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"progress\"][\"sent\"])') = 3 ]"
E3=$(send "Mail 3" '"tpm":1') # one copy a minute: the rest stays queued
api POST "/emails/$E3/pause" >/dev/null
r=$(api POST /suppressions '{"email_id":"dave@d.test","reason":"manual"}')
eq "suppressing dave while his copy is queued -> 201" "${r%% *}" 201
p=$(progress "$E3")
eq "  ... his queued copy counted suppressed at once" "$(echo "$p" | cut -d' ' -f5)" 1
api POST "/emails/$E3/rate-limit" '{"tpm":60000}' >/dev/null
api POST "/emails/$E3/resume" >/dev/null
wait_done "$E3"; ok $? "  ... the resumed email finishes"
eq "  ... progress: 2 sent (carol, erin), 1 suppressed, done" "$(progress "$E3")" "2 0 0 0 1 done"
eq "  ... no SMTP delivery to dave" "$(delivered dave@d.test "Mail 3") $(delivered erin@e.test "Mail 3")" "0 1"

# --- backfill skips a suppressed address
api POST /suppressions '{"email_id":"frank@f.test","reason":"complaint"}' >/dev/null
eq "a suppressed address may still register" "$(api POST /register '{"name":"Frank","email_id":"frank@f.test"}' | cut -d' ' -f1)" 201
api POST /register '{"name":"George","email_id":"george@g.test"}' >/dev/null
wait_for 30 bash -c "[ \$($PY -c 'import json; print(sum(1 for l in open(\"$TMP/smtpd/log.jsonl\") if \"george@g.test\" in l))') -ge 3 ]"
ok $? "george (registered after frank) receives his three backfilled copies"
eq "  ... frank none" "$(grep -c 'frank@f.test' "$TMP/smtpd/log.jsonl")" 0
eq "  ... the first email: 3 + backfilled to dave, erin and george, none to frank" "$(progress "$E1")" "6 0 0 0 0 done"

# --- health-service consumes emailId-events: user.unsubscribed is not invalid
HP=$(freeport)
start_health health "$HP" KAFKA_BROKERS="$BROKERS"; ok $? "health-service starts"
N=$(kcat -b "$BROKERS" -C -t emailId-events -e -q -f '%s\n' 2>/dev/null | wc -l)
metric() { curl -s "http://127.0.0.1:$HP/metrics" | awk -v m="$1" '$1 == m {print $2+0}'; }
wait_for 60 bash -c "[ \"\$(curl -s http://127.0.0.1:$HP/metrics | awk '\$1 == \"health_events_consumed_total\" {print \$2+0}')\" -ge $N ]"
ok $? "health consumed the $N user-topic events (user.unsubscribed among them)"
eq "  ... none counted invalid" "$(metric health_events_invalid_total)" 0
stop_named health

stop_named warmup; eq "warmup exits 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup
check "the secret is in no log line" -- bash -c "! grep -rq '$SECRET' $TMP/warmup/out.log $TMP/health/out.log"
stop_pid "$SMTPD_PID"; stop_pid "$BROKER_PID"
finish
