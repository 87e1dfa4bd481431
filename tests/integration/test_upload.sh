#!/bin/bash
# test_upload.sh - presigned multipart upload of a campaign's recipient CSV
# (DESIGN 9.5) with curl only, against UPLOAD_STORE=local: init, parts PUT
# with curl -T, complete, progress until done; forged and expired
# signatures 403, an oversize part 413, wrong/missing ETags and parts out
# of order or twice 400, abort removing the parts, invalid lines with
# their numbers, a restart mid-import resuming; /users/import extra columns
# as attributes and ?async=1 with its progress. Then UPLOAD_STORE=s3://
# against a real s3rver (npm, installed into .cache/s3rver when missing).
. "$(dirname "$0")/lib.sh"

WP=$(freeport); W=http://127.0.0.1:$WP
DB="$TMP/w/warmup.db"
BASE=(CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool" UPLOAD_PART_SIZE=65536 LOG_LEVEL=info)
# dbq SQL - a query on the warmup database (TEST_DB=postgres: its PostgreSQL database)
dbq() { if [ "${TEST_DB:-sqlite}" = postgres ]; then pg_sql w_w "$1"; else sqlite3 "$DB" "$1"; fi; }
dbq_is() { [ "$(dbq "$1")" = "$2" ]; }
imported_gt() { [ "$(dbq "SELECT imported FROM imports WHERE upload_id='$1'")" -gt "$2" ]; }
campaign() { # NAME AUDIENCE STATE -> id (the campaigns table is read, not owned, here)
  dbq "INSERT INTO campaigns(name, from_addr, template, version, audience, state, created_at)
    VALUES('$1', 'n@s.test', 't', 1, '$2', '$3', '2026-12-05T00:00:00Z') RETURNING id;"; }
st() { curl -s "$W/campaigns/$1/upload" | $PY -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
wait_state() { local i; for ((i = 0; i < ${3:-600}; i++)); do [ "$(st "$1")" = "$2" ] && return 0; sleep 0.1; done; return 1; }
init() { http POST "$W/campaigns/$1/upload/init" "{\"filename\":\"l.csv\",\"size\":$2,\"content_type\":\"text/csv\"}"; }
url() { jget "$1" "j['parts'][$2-1]['url']"; }
put() { curl -s -o "$TMP/put.out" -D "$TMP/put.hdr" -w '%{http_code}' -T "$2" "$1"; }
etag() { sed -n 's/^ETag: "\(.*\)"\r$/\1/Ip' "$TMP/put.hdr"; }

start_warmup w "$WP" "${BASE[@]}"; ok $? "warmup-service starts (UPLOAD_STORE=local)"
C1=$(campaign c1 '{"upload":true}' draft)
CALL=$(campaign all '{"all":true}' draft)
CRUN=$(campaign run '{"upload":true}' running)

# --- a list of 3 parts (64 KiB each): valid rows, an invalid line, a duplicate, attributes
$PY - "$TMP/list.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email_id,name,plan,city\n")
    for i in range(6000):
        f.write(f"u{i}@d{i%7}.test,User {i},{'pro' if i%2 else 'free'},\n")
    f.write("not-an-address,Bad,pro,x\n")   # line 6002
    f.write("u1@d1.test,Again,pro,\n")       # duplicate
    f.write("u9999@d1.test,\"Smith, J\",pro,Paris\n")
PY
SIZE=$(stat -c %s "$TMP/list.csv")
split -b 65536 -d -a 1 "$TMP/list.csv" "$TMP/part."
NP=$(ls "$TMP"/part.* | wc -l)
R=$(init "$C1" "$SIZE"); eq "init: 201" "${R%% *}" 201
J=${R#* }; U=$(jget "$J" 'j["upload_id"]')
eq "init: part_size and one URL per part" "$(jget "$J" '[j["part_size"], len(j["parts"])]')" "[65536, $NP]"
check "init: expires_at is RFC 3339" -- bash -c "echo '$J' | grep -q '\"expires_at\":\"20'"
eq "unknown campaign: 404" "$(init 999 10 | cut -d' ' -f1)" 404
eq "audience not an upload: 409" "$(init "$CALL" 10 | cut -d' ' -f1)" 409
eq "campaign not a draft: 409" "$(init "$CRUN" 10 | cut -d' ' -f1)" 409
eq "size 0: 400" "$(init "$C1" 0 | cut -d' ' -f1)" 400
eq "content_type not text/csv: 400" "$(http POST "$W/campaigns/$C1/upload/init" '{"filename":"a","size":5,"content_type":"text/plain"}' | cut -d' ' -f1)" 400

U1=$(url "$J" 1)
eq "forged signature: 403" "$(put "${U1%sig=*}sig=AAAA$(echo "${U1#*sig=}" | cut -c5-)" "$TMP/part.0")" 403
eq "another part's signature: 403" "$(put "$(echo "$U1" | sed "s#/$U/1?#/$U/2?#")" "$TMP/part.0")" 403
eq "an expiry of 19 digits: 403 (no overflow)" "$(put "$(echo "$U1" | sed 's/expires=[0-9]*/expires=9999999999999999999/')" "$TMP/part.0")" 403
eq "a later expiry with the old signature: 403" "$(put "$(echo "$U1" | sed 's/expires=\([0-9]*\)/expires=9\1/')" "$TMP/part.0")" 403
head -c 70000 /dev/zero > "$TMP/big"
eq "a part over part_size: 413" "$(put "$U1" "$TMP/big")" 413
eq "oversize part streamed without Content-Length: 413" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' -T - "$U1" < "$TMP/big")" 413
ETAGS=()
for ((p = 1; p <= NP; p++)); do
  code=$(put "$(url "$J" $p)" "$TMP/part.$((p-1))")
  [ "$code" = 200 ] || echo "# part $p: $code $(cat "$TMP/put.out")"
  ETAGS+=("$(etag)")
done
eq "part ETag is the md5 of its bytes" "${ETAGS[0]}" "$(md5sum < "$TMP/part.0" | cut -d' ' -f1)"
# a duplicated PUT of a part replaces it
eq "PUT of a part again: 200" "$(put "$(url "$J" 1)" "$TMP/part.0")" 200
check "the parts are files under UPLOAD_DIR" -- test -f "$TMP/w/uploads/$U/1"

parts() { $PY -c 'import json,sys; print(json.dumps([{"part":int(p),"etag":e} for p,e in zip(sys.argv[1::2], sys.argv[2::2])]))' "$@"; }
complete() { http POST "$W/campaigns/$C1/upload/complete" "{\"upload_id\":\"$U\",\"parts\":$1}"; }
eq "complete with a wrong ETag: 400" "$(complete "$(parts 1 "${ETAGS[0]}" 2 "0123456789abcdef0123456789abcdef" 3 "${ETAGS[2]}")" | cut -d' ' -f1)" 400
check "  naming the part" -- grep -q 'part 2' "$TMP/.body"
eq "complete with a part missing from the list: 400" "$(complete "$(parts 1 "${ETAGS[0]}" 3 "${ETAGS[2]}")" | cut -d' ' -f1)" 400
eq "complete with a missing ETag: 400" "$(complete '[{"part":1}]' | cut -d' ' -f1)" 400
eq "parts out of order: 400" "$(complete "$(parts 2 "${ETAGS[1]}" 1 "${ETAGS[0]}" 3 "${ETAGS[2]}")" | cut -d' ' -f1)" 400
eq "a part twice: 400" "$(complete "$(parts 1 "${ETAGS[0]}" 1 "${ETAGS[0]}" 2 "${ETAGS[1]}" 3 "${ETAGS[2]}")" | cut -d' ' -f1)" 400
eq "GET before complete: uploading" "$(st "$C1")" uploading
R=$(complete "$(parts 1 "\"${ETAGS[0]}\"" 2 "${ETAGS[1]}" 3 "${ETAGS[2]}")")
eq "complete: 202" "${R%% *}" 202
check "import runs to done" -- wait_state "$C1" done
P=$(curl -s "$W/campaigns/$C1/upload")
eq "progress: rows, imported, duplicates" "$(jget "$P" '[j["rows"], j["imported"], j["duplicates"]]')" "[6003, 6001, 1]"
eq "the invalid line with its number" "$(jget "$P" 'j["invalid"][0]["line"]')" 6002
eq "recipients stored with attributes (empty columns left out)" \
  "$(dbq "SELECT name, attributes FROM campaign_recipients WHERE campaign_id=$C1 AND address='u9999@d1.test'")" \
  'Smith, J|{"plan":"pro","city":"Paris"}'
eq "first row's attributes" "$(dbq "SELECT attributes, line FROM campaign_recipients WHERE campaign_id=$C1 AND address='u0@d0.test'")" '{"plan":"free"}|2'
check "the local parts are removed after the import" -- test ! -e "$TMP/w/uploads/$U"
eq "complete again: 409" "$(complete "$(parts 1 "${ETAGS[0]}")" | cut -d' ' -f1)" 409

# --- abort
R=$(init "$C1" 100); J=${R#* }; U=$(jget "$J" 'j["upload_id"]')
printf 'name,email_id\nA,a@x.test\n' > "$TMP/small.csv"
put "$(url "$J" 1)" "$TMP/small.csv" >/dev/null
check "abort: part file present before" -- test -f "$TMP/w/uploads/$U/1"
eq "abort: 202" "$(http POST "$W/campaigns/$C1/upload/abort" "{\"upload_id\":\"$U\"}" | cut -d' ' -f1)" 202
check "abort removes the part files" -- test ! -e "$TMP/w/uploads/$U"
eq "abort removes the part rows" "$(dbq "SELECT count(*) FROM upload_parts WHERE upload_id='$U'")" 0
eq "a PUT after abort: 409" "$(put "$(url "$J" 1)" "$TMP/small.csv")" 409

# --- expired URL (UPLOAD_URL_TTL=60, the clock is the service's: sign one that has passed)
R=$(init "$C1" 100); J=${R#* }; U_OLD=$(jget "$J" 'j["upload_id"]')
put "$(url "$J" 1)" "$TMP/small.csv" >/dev/null
R=$(init "$C1" 100); J=${R#* }; U=$(jget "$J" 'j["upload_id"]')
stop_named w
# an upload left open whose URLs expired two days ago: swept at the next start
dbq "UPDATE uploads SET expires_ms = expires_ms - 172800000 WHERE id = '$U_OLD'"
KEY=$(cat "$TMP/w/uploads/upload.key")
check "the generated key file is 0600" -- test "$(stat -c %a "$TMP/w/uploads/upload.key")" = 600
start_warmup w "$WP" "${BASE[@]}" API_TOKEN=upload-test-token; ok $? "restart with API_TOKEN"
eq "a part URL still works after a restart (key kept), with no bearer token" "$(put "$(url "$J" 1)" "$TMP/small.csv")" 200
eq "the API itself still needs the token" "$(http GET "$W/campaigns/$C1/upload" | cut -d' ' -f1)" 401
check "an upload expired for more than a day is aborted by the sweep" -- \
  wait_for 10 dbq_is "SELECT state FROM uploads WHERE id='$U_OLD'" aborted
check "  its part files removed" -- test ! -e "$TMP/w/uploads/$U_OLD"
eq "  an open upload still valid is kept" "$(dbq "SELECT state FROM uploads WHERE id='$U'")" open
EXP=$(( $(date +%s) - 5 ))
SIG=$($PY -c 'import hmac,hashlib,base64,sys; print(base64.urlsafe_b64encode(hmac.new(sys.argv[1].encode(), f"PUT\n{sys.argv[2]}\n1\n{sys.argv[3]}".encode(), hashlib.sha256).digest()).decode().rstrip("="))' "$KEY" "$U" "$EXP")
eq "a correctly signed but expired URL: 403" "$(put "$W/uploads/$U/1?expires=$EXP&sig=$SIG" "$TMP/small.csv")" 403

# --- large upload: 60 MB in 4 parts (bench/upload.sh measures 1 GB), then a restart in the middle of its import
C2=$(campaign big '{"upload":true}' draft)
stop_named w
start_warmup w "$WP" "${BASE[@]}" UPLOAD_PART_SIZE=16777216 UPLOAD_SECRET=upload-secret-0123456789; ok $? "restart with 16 MiB parts and UPLOAD_SECRET"
check "UPLOAD_SECRET's value left the process environment" -- bash -c "! grep -qaF upload-secret-0123456789 /proc/$w_PID/environ"
$PY - "$TMP/big.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("name,email_id,plan,note\n")
    n, i = 0, 0
    pad = "x" * 40
    while n < 60 * 1000 * 1000:
        line = f"User {i},user{i}@big{i%50}.test,pro,{pad}\n"
        f.write(line); n += len(line); i += 1
PY
SIZE=$(stat -c %s "$TMP/big.csv"); ROWS=$(( $(wc -l < "$TMP/big.csv") - 1 ))
R=$(init "$C2" "$SIZE"); J=${R#* }; U=$(jget "$J" 'j["upload_id"]'); NP=$(jget "$J" 'len(j["parts"])')
split -b 16777216 -d -a 1 "$TMP/big.csv" "$TMP/bpart."
rm -f "$TMP/big.csv"
PL=()
for ((p = 1; p <= NP; p++)); do put "$(url "$J" $p)" "$TMP/bpart.$((p-1))" >/dev/null; PL+=("$p" "$(etag)"); done
rm -f "$TMP"/bpart.*
eq "60 MB: complete 202" "$(http POST "$W/campaigns/$C2/upload/complete" "{\"upload_id\":\"$U\",\"parts\":$(parts "${PL[@]}")}" | cut -d' ' -f1)" 202
wait_for 60 imported_gt "$U" 20000
stop_named w; eq "SIGTERM mid-import: clean exit" "$STOP_RC" 0
MID=$(dbq "SELECT state || ' ' || resume_at FROM imports WHERE upload_id='$U'")
check "the import was left importing with a resume point ($MID)" -- bash -c "[[ '$MID' == importing\ [1-9]* ]]"
start_warmup w "$WP" "${BASE[@]}"; ok $? "restart"
check "the import resumes and ends" -- wait_state "$C2" done 1200
P=$(curl -s "$W/campaigns/$C2/upload")
eq "every row imported exactly once across the restart" "$(jget "$P" '[j["rows"], j["imported"], j["duplicates"]]')" "[$ROWS, $ROWS, 0]"
eq "campaign_recipients holds them" "$(dbq "SELECT count(*) FROM campaign_recipients WHERE campaign_id=$C2")" "$ROWS"
check "resumed from its last batch (log)" -- grep -q "resumes at line" "$TMP/w/out.log"

# --- /users/import: extra columns as attributes, direct and ?async=1
printf 'name,email_id,plan\nAda,ada@a.test,pro\nBob,bob@a.test,\nEve,eve@a.test,%s\n' "$(head -c 4100 /dev/zero | tr '\0' x)" > "$TMP/u.csv"
R=$(http POST "$W/users/import" "$(cat "$TMP/u.csv")" -H 'Content-Type: text/csv')
eq "direct import: 2 imported, the 4 KiB attributes line invalid" "$(jget "${R#* }" '[j["imported"], j["invalid"][0]["line"]]')" "[2, 4]"
eq "attributes stored" "$(dbq "SELECT attributes FROM users WHERE email_id='ada@a.test'")" '{"plan":"pro"}'
eq "no extra value: no attributes" "$(dbq "SELECT coalesce(attributes,'NULL') FROM users WHERE email_id='bob@a.test'")" NULL
printf 'name,email_id,team\nCy,cy@b.test,red\nbad,nope,x\nAda,ada@a.test,blue\n' > "$TMP/a.csv"
R=$(http POST "$W/users/import?async=1" "$(cat "$TMP/a.csv")" -H 'Content-Type: text/csv')
eq "async import: 202" "${R%% *}" 202
ID=$(jget "${R#* }" 'j["import_id"]')
eq "status_url" "$(jget "${R#* }" 'j["status_url"]')" "/users/import/$ID"
check "async import done" -- wait_for 20 bash -c "curl -s $W/users/import/$ID | grep -q '\"state\":\"done\"'"
P=$(curl -s "$W/users/import/$ID")
eq "async progress" "$(jget "$P" '[j["rows"], j["imported"], j["duplicates"], j["invalid"][0]["line"]]')" "[3, 1, 1, 3]"
eq "async user registered with attributes" "$(dbq "SELECT attributes FROM users WHERE email_id='cy@b.test'")" '{"team":"red"}'
check "its user.registered event is in the outbox" -- bash -c "grep -q cy@b.test <<< \"\$1\"" _ "$(dbq 'SELECT value FROM outbox')"
eq "unknown import: 404" "$(http GET "$W/users/import/999" | cut -d' ' -f1)" 404
eq "async=2: 400" "$(http POST "$W/users/import?async=2" 'name,email_id' -H 'Content-Type: text/csv' | cut -d' ' -f1)" 400
stop_named w; eq "clean exit" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean w
check "no secret in the log" -- bash -c "! grep -q '$KEY' '$TMP/w/out.log'"

# --- UPLOAD_STORE=s3:// against s3rver
S3DIR="$SRC_DIR/.cache/s3rver"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "# SKIP s3: npm/node are not installed (UPLOAD_STORE=s3:// not tested)"
else
  "$SRC_DIR/deploy/install-s3rver.sh" | sed 's/^/# /'   # no-op when .cache/s3rver has it
  SP=$(freeport)
  mkdir -p "$TMP/s3"
  node "$S3DIR/node_modules/s3rver/bin/s3rver.js" -d "$TMP/s3" -p "$SP" -a 127.0.0.1 --configure-bucket lists >"$TMP/s3.log" 2>&1 &
  S3PID=$!; track $S3PID
  wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SP"; ok $? "s3rver starts"
  S3=(UPLOAD_STORE=s3://lists/campaigns S3_ENDPOINT=http://127.0.0.1:$SP AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER UPLOAD_PART_SIZE=5242880)
  start_warmup w "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool" "${S3[@]}"; ok $? "warmup-service starts (UPLOAD_STORE=s3://)"
  check "AWS_SECRET_ACCESS_KEY's value left the process environment" -- bash -c "! grep -qaF AWS_SECRET_ACCESS_KEY=S3RVER /proc/$w_PID/environ"
  C3=$(campaign s3 '{"upload":true}' draft)
  $PY - "$TMP/s3.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("name,email_id,plan\n")
    for i in range(250000):
        f.write(f"S {i},s{i}@s3.test,p{i%3}\n")
    f.write("x,broken\n")
PY
  SIZE=$(stat -c %s "$TMP/s3.csv")
  R=$(init "$C3" "$SIZE"); eq "s3 init: 201" "${R%% *}" 201; J=${R#* }; U=$(jget "$J" 'j["upload_id"]'); NP=$(jget "$J" 'len(j["parts"])')
  check "s3 part URLs are SigV4 presigned to the bucket" -- bash -c "echo '$J' | grep -q 'lists/campaigns/.*X-Amz-Signature='"
  split -b 5242880 -d -a 1 "$TMP/s3.csv" "$TMP/s3part."
  PL=()
  for ((p = 1; p <= NP; p++)); do code=$(put "$(url "$J" $p)" "$TMP/s3part.$((p-1))"); [ "$code" = 200 ] || echo "# s3 part $p: $code"; PL+=("$p" "$(etag)"); done
  # (the ETags are S3's to check: s3rver 3 does not, so a wrong one is not tested here)
  eq "s3: parts out of order: 400" "$(http POST "$W/campaigns/$C3/upload/complete" "{\"upload_id\":\"$U\",\"parts\":$(parts 2 "${PL[3]}" 1 "${PL[1]}")}" | cut -d' ' -f1)" 400
  eq "s3: complete 202" "$(http POST "$W/campaigns/$C3/upload/complete" "{\"upload_id\":\"$U\",\"parts\":$(parts "${PL[@]}")}" | cut -d' ' -f1)" 202
  check "s3: import done" -- wait_state "$C3" done
  P=$(curl -s "$W/campaigns/$C3/upload")
  eq "s3: rows imported through a streamed GET, the broken line listed" "$(jget "$P" '[j["imported"], j["invalid"][0]["line"]]')" "[250000, 250002]"
  R=$(init "$C3" 10); J=${R#* }; U=$(jget "$J" 'j["upload_id"]')
  # s3rver 3 has no AbortMultipartUpload (405): the abort is refused with S3's reason and
  # the upload stays open for a retry (real S3 answers 204)
  eq "s3: abort refused by the server: 503" "$(http POST "$W/campaigns/$C3/upload/abort" "{\"upload_id\":\"$U\"}" | cut -d' ' -f1)" 503
  check "  with S3's answer in the message" -- grep -q 'AbortMultipartUpload: HTTP 405' "$TMP/.body"
  eq "  the upload stays open" "$(dbq "SELECT state FROM uploads WHERE id='$U'")" open
  stop_named w; eq "clean exit (s3)" "$STOP_RC" 0
  stop_pid "$S3PID"
  # TLS: an https endpoint is verified (S3_CA_FILE); another CA's certificate is refused
  . "$(dirname "$0")/smtp_servers.sh"
  gen_certs "$TMP/certs"
  TP=$(freeport)
  node "$S3DIR/node_modules/s3rver/bin/s3rver.js" -d "$TMP/s3" -p "$TP" -a 127.0.0.1 \
    --key "$TMP/certs/server.key" --cert "$TMP/certs/server.pem" >"$TMP/s3tls.log" 2>&1 &
  S3TLS=$!; track $S3TLS
  wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$TP"; ok $? "s3rver with TLS starts"
  TLS=(UPLOAD_STORE=s3://lists/campaigns S3_ENDPOINT=https://127.0.0.1:$TP AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER UPLOAD_PART_SIZE=5242880)
  start_warmup w "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool" "${TLS[@]}" S3_CA_FILE="$TMP/certs/ca.pem"; ok $? "start with an https S3_ENDPOINT and its CA"
  eq "https with the right CA: init 201" "$(init "$C3" 10 | cut -d' ' -f1)" 201
  stop_named w
  start_warmup w "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$TMP/spool" "${TLS[@]}" S3_CA_FILE="$TMP/certs/other-ca.pem"; ok $? "start with another CA"
  eq "https with a certificate of another CA: init 503" "$(init "$C3" 10 | cut -d' ' -f1)" 503
  check "  naming the TLS failure" -- grep -qiE 'certificate|SSL|TLS' "$TMP/.body"
  stop_named w; eq "clean exit (TLS)" "$STOP_RC" 0
  stop_pid "$S3TLS"
  check "no sanitizer report (TLS)" -- sanitizer_clean w
  check "no sanitizer report (s3)" -- sanitizer_clean w

fi
finish
