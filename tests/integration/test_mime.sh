#!/bin/bash
# test_mime.sh - messages composed by warmup-service/mime.c (through the
# mime_dump driver) read back by Python's email package with the strict
# checks of mime_parse.py: no defects, every header and body part decodes
# to what was put in. Also shows that mime_parse.py does reject broken
# messages, so a pass means something.
. "$(dirname "$0")/lib.sh"
: "${MIME_DUMP:=$BUILD_DIR/tests/mime_dump}"
PARSE="$SRC_DIR/tests/integration/mime_parse.py"
if [ ! -x /usr/bin/python3 ]; then echo "1..0 # SKIP /usr/bin/python3 not installed"; exit 0; fi

D="$TMP/mime"; mkdir -p "$D"
"$MIME_DUMP" "$D" > "$TMP/samples" 2> "$TMP/dump.err"
ok $? "mime_dump writes the samples"
[ -s "$TMP/dump.err" ] && sed 's/^/# /' "$TMP/dump.err"
eq "5 samples" "$(wc -l < "$TMP/samples")" 5

/usr/bin/python3 "$PARSE" "$D"/*.eml > "$TMP/parsed.jsonl" 2> "$TMP/parse.err"
rc=$?
ok $rc "mime_parse.py: no defects in any composed message"
[ $rc = 0 ] || { sed 's/^/# /' "$TMP/parsed.jsonl" "$TMP/parse.err" | cut -c1-400; }

# compare each parsed message with the inputs it was composed from
/usr/bin/python3 - "$TMP/parsed.jsonl" "$D" > "$TMP/compare.out" 2>&1 <<'PY'
import datetime, email.utils, json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
n = 0
def res(cond, name, got=None, want=None):
    global n
    n += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n, name))
    if not cond:
        print("#   got  %r\n#   want %r" % (got, want))
def nows(s):
    return "".join((s or "").split())
for r in rows:
    name = os.path.basename(r["file"])[:-4]
    w = json.load(open(os.path.join(sys.argv[2], name + ".want.json"), encoding="utf-8"))
    keys = ["file", "message_id", "from", "to", "subject", "date", "text", "html", "defects"]
    res(sorted(r) == sorted(keys), name + ": JSON line has the documented fields", sorted(r), sorted(keys))
    res(r["subject"] == w["subject"], name + ": subject decodes exactly", r["subject"], w["subject"])
    res(r["message_id"] == w["message_id"], name + ": Message-ID", r["message_id"], w["message_id"])
    want_date = datetime.datetime.fromtimestamp(w["date_ms"] // 1000, datetime.timezone.utc).isoformat()
    res(r["date"] == want_date, name + ": Date", r["date"], want_date)
    for h in ("from", "to"):
        dn, addr = email.utils.parseaddr(r[h])
        res(addr == w[h].lower(), "%s: %s address" % (name, h), addr, w[h])
        # Python 3.11 keeps the white space between adjacent encoded words
        # in a display name (RFC 2047 6.2 says to drop it): compare ASCII
        # names exactly, encoded ones without white space
        wn = w[h + "_name"] or ""
        same = dn == wn if wn.isascii() else nows(dn) == nows(wn)
        res(same, "%s: %s display name" % (name, h), dn, wn)
    text = w["text"].replace("\r\n", "\n")
    if w["html"] is None and text and not text.endswith("\n"):
        text += "\n"   # single part: the message ends in CRLF
    res(r["text"] == text, name + ": text body decodes exactly", (r["text"] or "")[:200], text[:200])
    html = w["html"].replace("\r\n", "\n") if w["html"] else None
    res(r["html"] == html, name + ": html body decodes exactly", (r["html"] or "")[:200], (html or "")[:200])
print("1..%d" % n)
PY
while IFS= read -r line; do
  case "$line" in
    "ok "*) ok 0 "${line#ok * - }" ;;
    "not ok "*) ok 1 "${line#not ok * - }" ;;
    "#"*) echo "$line" ;;
  esac
done < "$TMP/compare.out"
grep -q '^1\.\.[1-9]' "$TMP/compare.out"; ok $? "comparison ran"
grep -q '^Traceback' "$TMP/compare.out" && sed 's/^/# /' "$TMP/compare.out"

# raw octet rules again, independently of mime_parse.py
for f in "$D"/*.eml; do
  check "$(basename "$f"): CRLF only, no line over 998 octets" -- /usr/bin/python3 -c '
import sys
d = open(sys.argv[1], "rb").read()
sys.exit(0 if d.count(b"\n") == d.count(b"\r\n") == d.count(b"\r") and d.endswith(b"\r\n")
         and max(len(l) for l in d.split(b"\r\n")) <= 998 else 1)' "$f"
done

# the checker must be able to fail
B="$TMP/broken"; mkdir -p "$B"
printf 'From: a@b.com\nTo: c@d.com\nSubject: x\nDate: Mon, 23 Nov 2026 10:37:32 +0000\nMIME-Version: 1.0\n\nbody\n' > "$B/lf.eml"
printf 'From: a@b.com\r\nTo: c@d.com\r\nSubject: x\r\nDate: Mon, 23 Nov 2026 10:37:32 +0000\r\nMIME-Version: 1.0\r\n\r\nbody\r\n' > "$B/nomsgid.eml"
printf 'From: a@b.com\r\nTo: <c@d.com\r\nSubject: x\r\nMessage-ID: <a@b>\r\nDate: Mon, 23 Nov 2026 10:37:32 +0000\r\nMIME-Version: 1.0\r\n\r\nbody\r\n' > "$B/badto.eml"
printf 'From: a@b.com\r\nTo: c@d.com\r\nSubject: x\r\nMessage-ID: <a@b>\r\nDate: someday\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="zz"\r\n\r\n--zz\r\n\r\nno end\r\n' > "$B/multi.eml"
{ printf 'From: a@b.com\r\nTo: c@d.com\r\nSubject: x\r\nMessage-ID: <a@b>\r\nDate: Mon, 23 Nov 2026 10:37:32 +0000\r\nMIME-Version: 1.0\r\n\r\n'; head -c 1200 /dev/zero | tr '\0' x; printf '\r\n'; } > "$B/long.eml"
for f in lf nomsgid badto multi long; do
  /usr/bin/python3 "$PARSE" "$B/$f.eml" > "$TMP/b.out" 2>&1
  rc=$?
  d=$(/usr/bin/python3 -c 'import json,sys; print(len(json.loads(open(sys.argv[1]).readline())["defects"]))' "$TMP/b.out" 2>/dev/null)
  ok $(( rc == 0 || ${d:-0} == 0 )) "mime_parse.py rejects a broken message ($f): exit $rc, $d defects"
done
grep -q 'missing header Message-ID' <(/usr/bin/python3 "$PARSE" "$B/nomsgid.eml"); ok $? "missing Message-ID is named"
grep -q 'bare CR or LF' <(/usr/bin/python3 "$PARSE" "$B/lf.eml"); ok $? "bare LF is named"
grep -q '998' <(/usr/bin/python3 "$PARSE" "$B/long.eml"); ok $? "a line over 998 octets is named"
finish
