#!/bin/bash
# test_send_tls.sh - the GOOGLE preset against a local STARTTLS + AUTH
# server (aiosmtpd, test CA): content checked by Python's email parser;
# wrong password, wrong CA and wrong host name fail closed and dead-letter
# with the reason; the MAILPIT client delivers into maildev's REST API.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
. "$(dirname "$0")/maildev.sh"

sent_is() { [ "$(curl -s "$1/emails/$2" | $PY -c 'import json,sys; p=json.load(sys.stdin)["progress"]; print(p["sent"], p["dead"])')" = "$3" ]; }
register3() { # W
  for u in "Zoë Ünicode:zoe@one.test" "Bob O'Neil:bob@two.test" "Carol:carol@three.test"; do
    curl -s -X POST -H 'Content-Type: application/json' -d "{\"name\":\"${u%%:*}\",\"email_id\":\"${u#*:}\"}" "$1/register" >/dev/null
  done; }
SEND='{"from":"warmup@sender.test","from_name":"Wärmup Team","subject":"Grüße {{name}} — 你好","body":"Hello {{name}},\nyour address: {{email_id}}\n.\nA long line: '"$(printf 'x%.0s' $(seq 200))"'\n","html":"<p>Hello <b>{{name}}</b></p>"}'

gen_certs "$TMP/certs"; ok $? "test CA and certificates"
start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
TP=$(freeport)
start_smtpd_tls "$TP" "$TMP/smtpd" "$TMP/certs" seed1@gmail.test:password; ok $? "aiosmtpd with STARTTLS and AUTH required"
GOOD_SMTPD=$SMTPD_PID
GOOGLE=(CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE GMAIL_SMTP_HOST=localhost GMAIL_SMTP_PORT=$TP GMAIL_SMTP_USERNAME=seed1@gmail.test
        WORKERS=2 RETRY_MAX=1 RETRY_BASE_MS=100 SMTP_COMMAND_TIMEOUT_MS=5000 MESSAGE_ID_DOMAIN=sender.test)

# --- the GOOGLE preset with TLS + AUTH and the right CA
WP=$(freeport); W=http://127.0.0.1:$WP
start_warmup good "$WP" "${GOOGLE[@]}" GMAIL_SMTP_APP_PASSWORD=password SMTP_CA_FILE="$TMP/certs/ca.pem"; ok $? "warmup-service (GOOGLE preset) starts"
register3 "$W"
E=$(jget "$(curl -s -X POST -H 'Content-Type: application/json' --data-binary "$SEND" "$W/send")" 'j["email_id"]')
wait_for 60 sent_is "$W" "$E" "3 0"; ok $? "3 copies sent over STARTTLS + AUTH"
check "the server saw TLS and an authenticated user for every message" -- $PY -c "
import json,sys
m=[json.loads(l) for l in open('$TMP/smtpd/log.jsonl') if '\"message\"' in l]
sys.exit(0 if len(m)==3 and all(x['tls'] and x['user']=='seed1@gmail.test' for x in m) else 1)"
ls "$TMP"/smtpd/*.eml > "$TMP/emls"
$PY "$SRC_DIR/tests/integration/mime_parse.py" $(cat "$TMP/emls") > "$TMP/parsed.jsonl"; ok $? "every captured message parses without a defect (strict policy)"
$PY - "$TMP/parsed.jsonl" "$E" > "$TMP/content.out" 2>&1 <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
eid = sys.argv[2]
names = {"zoe@one.test": "Zoë Ünicode", "bob@two.test": "Bob O'Neil", "carol@three.test": "Carol"}
assert len(rows) == 3, rows
ids = set()
for r in rows:
    to = r["to"]
    addr = to[to.index("<") + 1:to.index(">")] if "<" in to else to
    name = names[addr]
    assert r["subject"] == f"Grüße {name} — 你好", r["subject"]
    assert f"Hello {name}," in r["text"] and f"your address: {addr}" in r["text"], r["text"]
    assert "x" * 200 in r["text"], "long line lost"
    assert r["html"] and (f"<b>{name}</b>" in r["html"] or f"<b>{name.replace(chr(39), '&#39;')}</b>" in r["html"]), r["html"]
    assert "Wärmup Team" in r["from"] and "warmup@sender.test" in r["from"], r["from"]
    assert r["message_id"].startswith(f"<email-{eid}.") and r["message_id"].endswith("@sender.test>"), r["message_id"]
    assert r["date"], "Date missing"
    ids.add(r["message_id"])
assert len(ids) == 3, ids
print("content ok")
PY
ok $? "subject with non-ASCII text round-trips, placeholders filled, html alternative, unique Message-IDs"
grep -v 'content ok' "$TMP/content.out" | head -5 | sed 's/^/# /'
stop_named good

# --- wrong password: dead-lettered at once with the server's reply
WP=$(freeport); W=http://127.0.0.1:$WP
start_warmup badpw "$WP" "${GOOGLE[@]}" GMAIL_SMTP_APP_PASSWORD=Wr0ng-S3cret-pw SMTP_CA_FILE="$TMP/certs/ca.pem"
register3 "$W"
E=$(jget "$(curl -s -X POST -H 'Content-Type: application/json' --data-binary "$SEND" "$W/send")" 'j["email_id"]')
wait_for 30 sent_is "$W" "$E" "0 3"; ok $? "wrong password: every copy dead-lettered"
r=$(curl -s "$W/dlq?email_id=$E")
eq "the DLQ keeps the server's 535 reply" "$(jget "$r" '[x["smtp_code"] for x in j]')" "[535, 535, 535]"
check "the password is in no log line and no DLQ entry" -- bash -c "! grep -q 'Wr0ng-S3cret-pw' $TMP/badpw/out.log && ! curl -s '$W/dlq' | grep -q 'Wr0ng-S3cret-pw'"
stop_named badpw

# --- wrong CA: fails closed, nothing reaches the server
n0=$(ls "$TMP"/smtpd/*.eml | wc -l)
WP=$(freeport); W=http://127.0.0.1:$WP
start_warmup badca "$WP" "${GOOGLE[@]}" GMAIL_SMTP_APP_PASSWORD=password SMTP_CA_FILE="$TMP/certs/other-ca.pem"
register3 "$W"
E=$(jget "$(curl -s -X POST -H 'Content-Type: application/json' --data-binary "$SEND" "$W/send")" 'j["email_id"]')
wait_for 30 sent_is "$W" "$E" "0 3"; ok $? "wrong CA: copies dead-lettered after the retries"
check "wrong CA: the reason says the certificate did not verify" -- bash -c "curl -s '$W/dlq?email_id=$E' | grep -qi 'certif'"
eq "wrong CA: no message reached the server" "$(ls "$TMP"/smtpd/*.eml | wc -l)" "$n0"
r=$(curl -s -o /dev/null -w '%{http_code}' "$W/readyz")
eq "readiness reports the SMTP failure" "$r" 503
stop_named badca

# --- wrong host name: a certificate for wrong.test, signed by the right CA
HP=$(freeport)
start_smtpd_tls "$HP" "$TMP/smtpd2" "$TMP/certs" seed1@gmail.test:password --cert "$TMP/certs/wrong.pem" --key "$TMP/certs/wrong.key"
WRONG_PID=$SMTPD_PID
WP=$(freeport); W=http://127.0.0.1:$WP
start_warmup badhost "$WP" CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE GMAIL_SMTP_HOST=localhost GMAIL_SMTP_PORT=$HP GMAIL_SMTP_USERNAME=seed1@gmail.test \
  GMAIL_SMTP_APP_PASSWORD=password SMTP_CA_FILE="$TMP/certs/ca.pem" RETRY_MAX=0 WORKERS=1
register3 "$W"
E=$(jget "$(curl -s -X POST -H 'Content-Type: application/json' --data-binary "$SEND" "$W/send")" 'j["email_id"]')
wait_for 30 sent_is "$W" "$E" "0 3"; ok $? "wrong host name: fails closed, copies dead-lettered"
eq "wrong host name: nothing stored by that server" "$(ls "$TMP"/smtpd2/*.eml 2>/dev/null | wc -l)" 0
stop_named badhost; stop_pid "$WRONG_PID"

# --- MAILPIT client into maildev, read back through its REST API
if maildev_available; then
  MS=$(freeport); MW=$(freeport)
  start_maildev "$MS" "$MW" "$TMP/maildev"; ok $? "maildev starts"
  WP=$(freeport); W=http://127.0.0.1:$WP
  start_warmup mailpit "$WP" CHOOSEN_SMTP_CLIENT_TYPE=MAILPIT MAILPIT_SMTP_ADDR=127.0.0.1:$MS MESSAGE_ID_DOMAIN=sender.test
  register3 "$W"
  E=$(jget "$(curl -s -X POST -H 'Content-Type: application/json' --data-binary "$SEND" "$W/send")" 'j["email_id"]')
  wait_for 60 sent_is "$W" "$E" "3 0"; ok $? "3 copies sent to maildev"
  maildev_wait_count 3 20; ok $? "maildev holds the 3 copies"
  r=$(curl -s "$MAILDEV_API/email")
  eq "maildev decodes subjects and recipients" "$(jget "$r" 'sorted(m["subject"] for m in j)')" '["Gr\u00fc\u00dfe Bob O'"'"'Neil \u2014 \u4f60\u597d", "Gr\u00fc\u00dfe Carol \u2014 \u4f60\u597d", "Gr\u00fc\u00dfe Zo\u00eb \u00dcnicode \u2014 \u4f60\u597d"]'
  stop_named mailpit; stop_maildev
else
  ok 1 "maildev is installed (make deps installs it with npm)"
fi
check "no sanitizer report (good)" -- sanitizer_clean good
check "no sanitizer report (bad password)" -- sanitizer_clean badpw
check "no sanitizer report (bad CA)" -- sanitizer_clean badca
stop_pid "$GOOD_SMTPD"; stop_pid "$BROKER_PID"
finish
