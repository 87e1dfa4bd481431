#!/bin/bash
# test_maildev.sh - maildev as the tests use it: start it, send messages
# into it with curl's SMTP client, read them back through the REST API
# (list, lookup by Message-ID, parsed fields, raw source), clear, stop.
# With MIME_DUMP set, messages composed by warmup-service/mime.c go the
# same way and maildev's MIME parser must decode them to the inputs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/maildev.sh"
: "${MIME_DUMP:=$BUILD_DIR/tests/mime_dump}"
if ! maildev_available; then
  echo "1..0 # SKIP maildev not installed (deploy/install-maildev.sh needs npm)"
  exit 0
fi

SP=$(freeport); WP=$(freeport)
start_maildev "$SP" "$WP" "$TMP/maildev"; ok $? "maildev starts (smtp $SP, web $WP)"
alive "$MAILDEV_PID"; ok $? "MAILDEV_PID is the running node process"
eq "no email yet" "$(maildev_count)" 0

# send - curl SMTP upload of FILE from FROM to RCPT (curl dot-stuffs)
send() { curl -sS -m 20 --url "smtp://127.0.0.1:$SP" --mail-from "$2" --mail-rcpt "$3" -T "$1"; }

printf '%s\r\n' "From: Alice <alice@example.test>" "To: seed1@gmail.test" \
  "Subject: hello from curl" "Message-ID: <curl-1@example.test>" \
  "Date: Mon, 23 Nov 2026 10:37:32 +0000" "X-Test-Id: 42" "" "first line" "." "..two dots" "last line" \
  > "$TMP/m1.eml"
send "$TMP/m1.eml" alice@example.test seed1@gmail.test; ok $? "curl sends a message over SMTP"
maildev_wait_count 1; ok $? "maildev lists it"
ID=$(maildev_id "<curl-1@example.test>"); ok $? "found by Message-ID (id $ID)"
J=$(maildev_email "$ID")
eq "subject" "$(jget "$J" 'j["subject"]')" "hello from curl"
eq "custom header" "$(jget "$J" 'j["headers"]["x-test-id"]')" 42
eq "envelope sender" "$(jget "$J" 'j["envelope"]["from"]["address"]')" alice@example.test
eq "envelope recipient" "$(jget "$J" 'j["envelope"]["to"][0]["address"]')" seed1@gmail.test
eq "From display name" "$(jget "$J" 'j["from"][0]["name"]')" Alice
maildev_source "$ID" > "$TMP/m1.src"; ok $? "raw source served"
grep -q '^Subject: hello from curl' "$TMP/m1.src"; ok $? "source has the Subject line"
# dot-stuffing by curl and un-stuffing by maildev: "." and "..two dots" come back as sent
$PY - "$TMP/m1.eml" "$TMP/m1.src" <<'PY'; ok $? "body lines starting with '.' survive SMTP"
import sys
sent = open(sys.argv[1], "rb").read().split(b"\r\n\r\n", 1)[1]
got = open(sys.argv[2], "rb").read().replace(b"\r\n", b"\n")
sys.exit(0 if sent.replace(b"\r\n", b"\n") in got else 1)
PY

# a second recipient, then the list has both
send "$TMP/m1.eml" alice@example.test seed2@gmail.test >/dev/null
maildev_wait_count 2; ok $? "a second delivery is listed"

# messages composed by mime.c, parsed by maildev (mailparser)
if [ -x "$MIME_DUMP" ]; then
  mkdir -p "$TMP/mime"
  "$MIME_DUMP" "$TMP/mime" > "$TMP/samples"; ok $? "mime_dump writes samples"
  n=2
  while read -r s; do
    send "$TMP/mime/$s.eml" noreply@d.com rcpt@example.test; ok $? "send composed '$s'"
    n=$((n + 1))
  done < "$TMP/samples"
  maildev_wait_count "$n"; ok $? "all composed messages caught"
  while read -r s; do
    mid=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["message_id"])' "$TMP/mime/$s.want.json")
    id=$(maildev_id "$mid") || { ok 1 "'$s' found by Message-ID $mid"; continue; }
    maildev_email "$id" > "$TMP/mime/$s.got.json"
    $PY - "$TMP/mime/$s.want.json" "$TMP/mime/$s.got.json" > "$TMP/cmp.out" 2>&1 <<'PY'
import json, sys
w = json.load(open(sys.argv[1], encoding="utf-8"))
g = json.load(open(sys.argv[2], encoding="utf-8"))
bad = []
if g.get("subject") != w["subject"]:
    bad.append("subject %r != %r" % (g.get("subject"), w["subject"]))
if g["from"][0]["address"] != w["from"] or g["to"][0]["address"] != w["to"]:
    bad.append("addresses %r %r" % (g["from"], g["to"]))
for h in ("from", "to"):
    if (g[h][0].get("name") or "") != (w[h + "_name"] or ""):
        bad.append("%s name %r != %r" % (h, g[h][0].get("name"), w[h + "_name"]))
want_text = w["text"].replace("\r\n", "\n")
if (g.get("text") or "").replace("\r\n", "\n").rstrip("\n") != want_text.rstrip("\n"):
    bad.append("text %r != %r" % ((g.get("text") or "")[:120], want_text[:120]))
if w["html"] and (g.get("html") or "").replace("\r\n", "\n").rstrip("\n") != w["html"].replace("\r\n", "\n").rstrip("\n"):
    bad.append("html %r != %r" % ((g.get("html") or "")[:120], w["html"][:120]))
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
    rc=$?
    ok $rc "maildev decodes composed '$s': subject, addresses, display names, text, html"
    [ $rc = 0 ] || sed 's/^/#   /' "$TMP/cmp.out" | cut -c1-300
  done < "$TMP/samples"
else
  echo "# MIME_DUMP not built: composed messages not sent"
fi

maildev_clear; ok $? "DELETE /api/email/all"
eq "list empty after clear" "$(maildev_count)" 0
stop_maildev; ok $? "maildev stops on SIGTERM"
! alive "$MAILDEV_PID"; ok $? "process gone"
finish
