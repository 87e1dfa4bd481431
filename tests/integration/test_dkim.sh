#!/bin/bash
# test_dkim.sh - DKIM signatures on copies sent through the real send path
# (captured by aiosmtpd), each checked by two verifiers against local key
# tables (no DNS): dkimpy (python3-dkim, dnsfunc) and libopendkim
# (dkim_verify.c, DKIM_QUERY_FILE); tampered copies fail both; an unkeyed
# From domain goes out unsigned, a subdomain is signed with its parent's
# key; a bad DKIM_KEYS_FILE stops start-up. Then the EHLO name (smtp-sink).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
DKIM_VERIFY=${DKIM_VERIFY:-$BUILD_DIR/tests/dkim_verify}

# --- keys and the published records (the key table both verifiers read)
K=$TMP/keys
mkdir -p "$K"
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$K/rsa.pem" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$K/ed.pem" 2>/dev/null
RP=$(openssl pkey -in "$K/rsa.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
EP=$(openssl pkey -in "$K/ed.pem" -pubout -outform DER 2>/dev/null | tail -c 32 | base64 -w0)
cat >"$K/table" <<EOF
r1._domainkey.rsa.test v=DKIM1; k=rsa; p=$RP
e1._domainkey.ed.test v=DKIM1; k=ed25519; p=$EP
e2._domainkey.dual.test v=DKIM1; k=ed25519; p=$EP
r2._domainkey.dual.test v=DKIM1; k=rsa; p=$RP
EOF
cat >"$K/keys.json" <<EOF
[{"domain":"rsa.test","selector":"r1","algorithm":"rsa-sha256","key_file":"$K/rsa.pem"},
 {"domain":"ed.test","selector":"e1","algorithm":"ed25519-sha256","key_file":"$K/ed.pem"},
 {"domain":"dual.test","selector":"e2","algorithm":"ed25519-sha256","key_file":"$K/ed.pem"},
 {"domain":"dual.test","selector":"r2","algorithm":"rsa-sha256","key_file":"$K/rsa.pem"}]
EOF

# dkimpy FILE... - one line per message: "FILE d=..,s=.. d=..,s=.." of the
# signatures that verify, "FAIL ..." for one that does not, "none" unsigned
dkimpy() { $PY - "$K/table" "$@" <<'PY'
import sys, dkim
keys = {}
for line in open(sys.argv[1]):
    name, txt = line.split(None, 1)
    keys[name.lower()] = txt.strip().encode()
def dnsfunc(name, timeout=5):
    return keys.get((name.decode() if isinstance(name, bytes) else name).rstrip(".").lower())
for f in sys.argv[2:]:
    msg = open(f, "rb").read()
    d = dkim.DKIM(msg)
    n = sum(1 for h in d.headers if h[0].lower() == b"dkim-signature")
    out = []
    for i in range(n):
        try:
            ok = d.verify(idx=i, dnsfunc=dnsfunc)
        except dkim.DKIMException as e:
            ok = False
        tags = dkim.util.parse_tag_value(
            [h[1] for h in d.headers if h[0].lower() == b"dkim-signature"][i])
        s = "d=%s,s=%s,a=%s" % (tags[b"d"].decode(), tags[b"s"].decode(), tags[b"a"].decode())
        out.append(s if ok else "FAIL:" + s)
    print(f, " ".join(out) if out else "none")
PY
}

gen_certs "$TMP/certs" || { ok 1 "test certificates"; finish; exit 1; }
SP=$(freeport)
WP=$(freeport)
W=http://127.0.0.1:$WP
start_smtpd_tls "$SP" "$TMP/mail" "$TMP/certs" u:p --no-require-tls --no-auth-required
ok $? "aiosmtpd (capture) starts"
start_warmup w "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" \
  SMTP_TLS=none MESSAGE_ID_DOMAIN=warmup.test DKIM_KEYS_FILE="$K/keys.json" LOG_LEVEL=info
ok $? "warmup-service starts with DKIM_KEYS_FILE"

http POST "$W/register" '{"name":"Bob Plain","email_id":"bob@rcpt.test"}' >/dev/null
http POST "$W/register" '{"name":"Zoë Ñandú","email_id":"zoe@rcpt.test"}' >/dev/null
LONG=$(printf 'word%.0s ' $(seq 1 400))
send() { # send FROM VARIANT
  $PY - "$1" "$2" "$LONG" >"$TMP/body.json" <<'PY'
import json, sys
frm, v, long = sys.argv[1:]
b = {"from": frm, "subject": "Hello {{name}}", "body": "Hi {{name}}.\n"}
if v == "utf8":
    b.update(subject="Grüße, {{name}} — café ☕", from_name="Zoë Äpfel", body="Größe: ok\n")
elif v == "html":
    b.update(html="<p>Hi <b>{{name}}</b></p>", body="Hi {{name}} (text part)\n")
elif v == "edges":
    b.update(body=".\n..two\n.leading dot\nFrom the start\n" + long + "\ntrailing   \n\n\n")
print(json.dumps(b))
PY
  http POST "$W/send" "$(cat "$TMP/body.json")" >/dev/null
}
for d in rsa.test ed.test dual.test; do
  for v in ascii utf8 html edges; do send "news@$d" $v; done
done
send news@eu.rsa.test ascii
send news@nokeys.test ascii
N=$(((12 + 2) * 2))
wait_for 60 bash -c "[ \$(ls $TMP/mail/*.eml 2>/dev/null | wc -l) -ge $N ]"
ok $? "$N copies captured"

dkimpy "$TMP"/mail/*.eml >"$TMP/py.out" 2>"$TMP/py.err"
"$DKIM_VERIFY" "$K/table" "$TMP"/mail/*.eml >"$TMP/od.out" 2>&1
# expected per From domain
$PY - "$TMP/py.out" "$TMP/od.out" "$TMP"/mail/*.eml >"$TMP/check.out" 2>&1 <<'PY'
import email, sys
py = dict(l.split(" ", 1) for l in open(sys.argv[1]).read().splitlines())
od = {}
for l in open(sys.argv[2]).read().splitlines():
    f, rest = l.split(" ", 1)
    od.setdefault(f, []).append(rest)
want = {"rsa.test": ["d=rsa.test,s=r1,a=rsa-sha256"],
        "ed.test": ["d=ed.test,s=e1,a=ed25519-sha256"],
        "dual.test": ["d=dual.test,s=e2,a=ed25519-sha256", "d=dual.test,s=r2,a=rsa-sha256"],
        "eu.rsa.test": ["d=rsa.test,s=r1,a=rsa-sha256"], "nokeys.test": []}
bad = 0
for f in sys.argv[3:]:
    m = email.message_from_bytes(open(f, "rb").read())
    dom = m["From"].split("@")[1].rstrip(">").strip()
    w = want[dom]
    got_py = py.get(f, "").split() if py.get(f) != "none" else []
    got_od = [x for x in od.get(f, []) if not x.startswith("none")]
    od_ok = all(" pass " in x for x in got_od) and len(got_od) == len(w) and \
        all(x.split()[0] + "," + x.split()[1] + "," + x.split()[2] == e for x, e in zip(got_od, w))
    if got_py != w or not od_ok:
        bad += 1
        print("MISMATCH", f, dom, got_py, got_od, w)
print("checked", len(sys.argv) - 3, "bad", bad)
sys.exit(1 if bad else 0)
PY
ok $? "every copy: the expected signatures, each verified by dkimpy and libopendkim"
sed 's/^/# /' "$TMP/check.out" | tail -5
grep -q 'checked 28 bad 0' "$TMP/check.out"
ok $? "28 copies checked (rsa, ed25519, both; subdomain; unkeyed)"
one=$(grep -l '^From: .*news@dual.test' "$TMP"/mail/*.eml | xargs grep -l 'word word' | head -1)
check "dual-signed copy with dots and From lines has two DKIM-Signature headers" -- \
  bash -c "[ \$(grep -c '^DKIM-Signature:' $one) = 2 ] && grep -q '^\\.\\.two' $one"
grep -h '^From: .*nokeys.test' -l "$TMP"/mail/*.eml | head -1 | xargs grep -q '^DKIM-Signature:'
ok $((!$?)) "a From domain without keys goes out unsigned"

# --- tampering: one byte of the body, one header
for d in rsa.test ed.test dual.test; do
  f=$(grep -l "^From: .*news@$d" "$TMP"/mail/*.eml | head -1)
  $PY - "$f" "$TMP/tb.eml" "$TMP/th.eml" <<'PY'
import sys
m = open(sys.argv[1], "rb").read()
h, b = m.split(b"\r\n\r\n", 1)
i = b.index(b"Hi")
open(sys.argv[2], "wb").write(h + b"\r\n\r\n" + b[:i] + b"Ho" + b[i + 2:])
open(sys.argv[3], "wb").write(m.replace(b"\r\nSubject: ", b"\r\nSubject: Re: ", 1))
PY
  for t in tb th; do
    r=$(dkimpy "$TMP/$t.eml" | cut -d' ' -f2-)
    case "$r" in *FAIL*) ! echo "$r" | grep -q ' d=' ;; *) false ;; esac
    ok $? "$d, $( [ $t = tb ] && echo body || echo Subject) changed: dkimpy fails every signature ($r)"
    "$DKIM_VERIFY" "$K/table" "$TMP/$t.eml" >"$TMP/t.out" 2>&1
    ok $((!$?)) "$d, $( [ $t = tb ] && echo body || echo Subject) changed: libopendkim fails"
  done
done
stop_named w
eq "warmup-service stops cleanly" "$STOP_RC" 0
sanitizer_clean w
ok $? "no sanitizer report"

# --- a bad DKIM_KEYS_FILE stops start-up with one line naming it
printf 'garbage' >"$K/bad.pem"
bad_start() { # bad_start NAME JSON WANT
  printf '%s' "$2" >"$K/bad.json"
  env PORT="$(freeport)" DB_PATH="$TMP/bad.db" KAFKA_BROKERS=127.0.0.1:1 \
    DKIM_KEYS_FILE="$K/bad.json" "$WARMUP_BIN" >"$TMP/bad.out" 2>&1 </dev/null
  local rc=$?
  [ $rc != 0 ] && grep -q "$3" "$TMP/bad.out"
  ok $? "start-up refused: $1"
  grep "$3" "$TMP/bad.out" | head -1 | sed 's/^/#   /'
}
bad_start "unreadable key" "[{\"domain\":\"a.test\",\"selector\":\"s\",\"algorithm\":\"rsa-sha256\",\"key_file\":\"$K/none.pem\"}]" 'DKIM_KEYS_FILE\[0\] (a.test s): key_file'
bad_start "malformed key" "[{\"domain\":\"a.test\",\"selector\":\"s\",\"algorithm\":\"rsa-sha256\",\"key_file\":\"$K/bad.pem\"}]" 'DKIM_KEYS_FILE\[0\] (a.test s): key_file .*not a PEM private key'
bad_start "unknown algorithm" "[{\"domain\":\"a.test\",\"selector\":\"s\",\"algorithm\":\"rsa-sha1\",\"key_file\":\"$K/rsa.pem\"}]" "DKIM_KEYS_FILE\[0\] (a.test s): field 'algorithm'"
bad_start "bad JSON" "[{" 'DKIM_KEYS_FILE '

# --- EHLO: what the server saw (smtp-sink dumps the EHLO argument)
ehlo_seen() { # ehlo_seen NAME [VAR=VALUE...] - sends one copy, prints the EHLO name
  local name=$1 port dir=$TMP/sink-$1
  shift
  port=$(freeport)
  start_smtp_sink "$port" "$dir" --dump >/dev/null || return 1
  local wp
  wp=$(freeport)
  start_warmup "$name" "$wp" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 \
    SMTP_PORT="$port" SMTP_TLS=none "$@" >/dev/null || return 1
  http POST "http://127.0.0.1:$wp/register" '{"name":"E","email_id":"e@rcpt.test"}' >/dev/null
  http POST "http://127.0.0.1:$wp/send" '{"from":"news@from.test","subject":"s","body":"b"}' >/dev/null
  wait_for 30 bash -c "ls $dir/msg.* >/dev/null 2>&1"
  stop_named "$name"
  stop_pid "$SINK_PID"
  sed -n 's/^X-Helo-Args: //p' "$dir"/msg.* | head -1 | tr -d '\r'
}
HOSTFQ=$($PY -c 'import socket; n=socket.gethostname(); c=socket.getaddrinfo(n, None, flags=socket.AI_CANONNAME)[0][3]; print(n if "." in n and not n.startswith("localhost") else c if "." in c and not c.startswith("localhost") else "")')
want=${HOSTFQ:-warmup.test}
eq "EHLO default: the host's name, else MESSAGE_ID_DOMAIN" "$(ehlo_seen e1 MESSAGE_ID_DOMAIN=warmup.test)" "$want"
eq "EHLO with SMTP_HELO" "$(ehlo_seen e2 SMTP_HELO=mx1.sender.test MESSAGE_ID_DOMAIN=warmup.test)" mx1.sender.test
if [ -z "$HOSTFQ" ]; then
  eq "EHLO without a host name or MESSAGE_ID_DOMAIN: the From domain" "$(ehlo_seen e3)" from.test
fi
for h in localhost mailhost localhost.localdomain; do
  env PORT="$(freeport)" DB_PATH="$TMP/helo.db" KAFKA_BROKERS=127.0.0.1:1 SMTP_HELO=$h \
    "$WARMUP_BIN" >"$TMP/helo.out" 2>&1 </dev/null
  rc=$?
  [ $rc != 0 ] && grep -q 'SMTP_HELO: must be a fully qualified host name' "$TMP/helo.out"
  ok $? "SMTP_HELO=$h is refused at start-up naming SMTP_HELO"
done
finish
