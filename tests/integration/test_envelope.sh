#!/bin/bash
# test_envelope.sh - what every copy carries on the wire (README
# "Deliverability"): the VERP envelope sender with BOUNCE_DOMAIN (the From
# without), Feedback-ID, a text part made from an html-only send, body lines
# beginning "From " encoded, an IDN recipient domain in A-labels, and an
# internationalised recipient dead at once, with the reason, on a server
# without SMTPUTF8 (Postfix smtp-sink) while sent with SMTPUTF8 to one that
# offers it (aiosmtpd). Real warmup-service, real servers, dev broker.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"

progress() { jget "$(curl -s "$1/emails/$2")" '"%d %d %d %d" % (j["progress"]["sent"], j["progress"]["failed"], j["progress"]["pending"], j["progress"]["dead"])'; }
settled() { [ "$(jget "$(curl -s "$1/emails/$2")" 'j["progress"]["pending"] + j["progress"]["failed"]')" = 0 ]; }

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
SP=$(freeport); WP=$(freeport); W=http://127.0.0.1:$WP
start_smtp_sink "$SP" "$TMP/sink" --dump; ok $? "smtp-sink starts (it does not offer SMTPUTF8)"
SMTP=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$SP SMTP_TLS=none WORKERS=2
  RETRY_BASE_MS=200 RETRY_MAX=3 MESSAGE_ID_DOMAIN=warmup.test)
# an IDN bounce domain: MAIL FROM carries its A-label form
start_warmup warmup "$WP" "${SMTP[@]}" "BOUNCE_DOMAIN=Bounce.B$(printf '\xc3\xbc')cher.test"
ok $? "warmup-service starts with BOUNCE_DOMAIN"

UU=$(printf '\xc3\xbcser@u.test')            # UTF-8 local part: needs SMTPUTF8
IDN=$(printf 'carol@b\xc3\xbccher.test')     # ASCII local part, IDN domain: A-labels
for u in "Alice alice@a.test" "Bob bob@b.test" "Ute $UU" "Carol $IDN"; do
  r=$(http POST "$W/register" "{\"name\":\"${u%% *}\",\"email_id\":\"${u#* }\"}")
  eq "register ${u#* }" "${r%% *}" 201
done

# html only (the API requires "body": an empty body means html only)
HTML='<html><head><style>p{color:red}</style></head><body><h1>Hello {{name}}</h1>\nFrom the team:<br>see <a href=\"https://x.test/a?b=1&amp;c=2\">our offer</a><ul><li>one</li><li>two</li></ul></body></html>'
r=$(http POST "$W/send" "{\"from\":\"news@sender.test\",\"from_name\":\"News\",\"subject\":\"Hi {{name}}\",\"body\":\"\",\"html\":\"$HTML\"}")
eq "html-only /send -> 202" "${r%% *}" 202
E1=$(jget "${r#* }" 'j["email_id"]')
wait_for 60 settled "$W" "$E1"; ok $? "the email settles"
eq "progress: 3 sent, the UTF-8 recipient dead" "$(progress "$W" "$E1")" "3 0 0 1"

# --- the internationalised recipient: dead at once, with the reason, no reply from the server
r=$(http GET "$W/dlq?email_id=$E1")
eq "/dlq: the UTF-8 recipient, one attempt, no SMTP reply, 5.6.7" \
  "$(jget "${r#* }" '[(d["recipient"], d["attempts"], d["smtp_code"], d["smtp_enhanced"]) for d in j]')" \
  "$(jget "[[\"$UU\",1,0,\"5.6.7\"]]" 'j')"
check "/dlq reason names SMTPUTF8" -- bash -c "printf '%s' '${r#* }' | grep -q 'internationalised (UTF-8) and the server does not offer SMTPUTF8'"
check "the server never saw the UTF-8 recipient" -- bash -c "! grep -rqF \"$UU\" $TMP/sink/"

# --- the three copies the server received
$PY - "$TMP/sink" "$E1" > "$TMP/check.out" 2>&1 <<'PY'
import email, email.policy, os, re, sys
d, eid = sys.argv[1], sys.argv[2]
files = sorted(f for f in os.listdir(d) if f.startswith("msg."))
assert len(files) == 3, files
want_text = ("Hello %s\n\nFrom the team:\nsee our offer (https://x.test/a?b=1&c=2)\n\n- one\n- two\n")
seen = set()
for f in files:
    raw = open(os.path.join(d, f), "rb").read()
    head, _, msg = raw.partition(b"Received: ")
    env = dict(re.findall(rb"^(X-[A-Za-z-]+): <?([^>\n]*)>?", head, re.M))
    mail_from, rcpt = env[b"X-Mail-Args"].decode(), env[b"X-Rcpt-Args"].decode()
    m = email.message_from_bytes(b"Received: " + msg, policy=email.policy.default)
    mid = m["Message-ID"]
    tok = re.fullmatch(r"<email-(%s\.[0-9a-f]{16})@warmup\.test>" % eid, mid)
    assert tok, mid
    # VERP: the token of this copy's Message-ID, at the bounce domain in A-labels
    assert mail_from == "bounces+%s@bounce.xn--bcher-kva.test" % tok.group(1), (mail_from, mid)
    assert m["From"] == "News <news@sender.test>", m["From"]
    assert "Return-Path" not in m, "Return-Path is the receiving MTA's"
    assert m["Feedback-ID"] == "%s:news:warmup:warmup.test" % eid, m["Feedback-ID"]
    assert m.get_content_type() == "multipart/alternative", m.get_content_type()
    text, html = [p for p in m.iter_parts()]
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    name = {"alice@a.test": "Alice", "bob@b.test": "Bob",
            "carol@xn--bcher-kva.test": "Carol"}[rcpt]
    got = text.get_content().replace("\r\n", "\n")
    assert got == want_text % name, repr(got)
    assert "\nFrom the team:" in html.get_content()
    # no line of the message as sent begins with "From "
    for line in msg.split(b"\n"):
        assert not line.startswith(b"From "), line
    assert b"\n=46rom the team:" in msg.replace(b"\r\n", b"\n")
    if rcpt.startswith("carol@"):
        assert m["To"].addresses[0].addr_spec == "carol@xn--bcher-kva.test", str(m["To"])
    seen.add(rcpt)
assert seen == {"alice@a.test", "bob@b.test", "carol@xn--bcher-kva.test"}, seen
print("copies ok")
PY
ok $? "VERP MAIL FROM per copy, From unchanged, Feedback-ID exact, text part from html, From lines encoded, IDN domain in A-labels"
grep -v 'copies ok' "$TMP/check.out" | tail -5 | sed 's/^/# /'
eq "no 5xx round trip: smtp-sink logged no refusal" "$(grep -c ' 5[0-9][0-9] ' "$TMP/sink/sink.log")" 0
stop_named warmup
eq "SIGTERM -> exit 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup

# --- a server that offers SMTPUTF8 (aiosmtpd): the UTF-8 recipient is sent, with the parameter;
# no BOUNCE_DOMAIN: MAIL FROM is the From address
gen_certs "$TMP/certs" || ok 1 "test certificates"
AP=$(freeport)
start_smtpd_tls "$AP" "$TMP/aio" "$TMP/certs" "x:y" --no-require-tls --no-auth-required --smtputf8 --pipelining
ok $? "aiosmtpd with SMTPUTF8 starts"
WP2=$(freeport); W2=http://127.0.0.1:$WP2
start_warmup warmup2 "$WP2" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT=$AP SMTP_TLS=none \
  WORKERS=1 RETRY_BASE_MS=200 RETRY_MAX=1 MESSAGE_ID_DOMAIN=warmup.test
ok $? "warmup-service starts without BOUNCE_DOMAIN"
for u in "Ute $UU" "Alice alice@a.test"; do
  http POST "$W2/register" "{\"name\":\"${u%% *}\",\"email_id\":\"${u#* }\"}" >/dev/null
done
r=$(http POST "$W2/send" '{"from":"news@sender.test","subject":"S","body":"From here on\nplain\n"}')
E2=$(jget "${r#* }" 'j["email_id"]')
wait_for 60 settled "$W2" "$E2"; ok $? "the second email settles"
eq "both sent, the UTF-8 recipient too" "$(progress "$W2" "$E2")" "2 0 0 0"
$PY - "$TMP/aio/log.jsonl" "$UU" > "$TMP/aio.out" 2>&1 <<'PY'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if '"message"' in l]
by = {m["rcpt"][0]: m for m in msgs}
assert set(by) == {sys.argv[2], "alice@a.test"}, by.keys()
assert by[sys.argv[2]]["smtputf8"] is True, by[sys.argv[2]]
assert by["alice@a.test"]["smtputf8"] is False, "ASCII mail needs no SMTPUTF8"
for m in msgs:
    assert m["mail_from"] == "news@sender.test", m["mail_from"]
    body = open(m["file"], "rb").read()
    assert b"\n=46rom here on" in body.replace(b"\r\n", b"\n") and b"\nFrom here" not in body
print("aiosmtpd ok")
PY
ok $? "SMTPUTF8 parameter for the UTF-8 recipient only; MAIL FROM is the From; From line encoded"
grep -v 'aiosmtpd ok' "$TMP/aio.out" | tail -5 | sed 's/^/# /'
stop_named warmup2
check "no sanitizer report (second run)" -- sanitizer_clean warmup2

# --- a bad BOUNCE_DOMAIN stops start-up with one line naming it
out=$(env PORT="$(freeport)" DB_PATH="$TMP/bad.db" BOUNCE_DOMAIN="not a domain" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN \
  "$WARMUP_BIN" 2>&1 </dev/null); rc=$?
eq "bad BOUNCE_DOMAIN: exit 2" "$rc" 2
check "bad BOUNCE_DOMAIN: the line names the variable" -- bash -c "printf '%s' \"\$1\" | grep -q 'BOUNCE_DOMAIN: not a valid domain'" _ "$out"

finish
