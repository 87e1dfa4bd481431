#!/bin/bash
# upload.sh - a campaign list of SIZE_MB megabytes uploaded through the
# presigned multipart flow (UPLOAD_STORE=local) with curl, then imported
# in the background: upload and import rates, and the service's peak
# resident memory (VmHWM) before the upload, after it and after the
# import, to show that neither the parts nor the import are held in
# memory (flat: the same peak whatever SIZE_MB).
#
# One warmup-service (DRYRUN client, durable SQLite, the dev broker), the
# campaign row written with sqlite3 (a draft with audience {"upload":true}).
#
#   SIZE_MB=1024   size of the generated CSV (name,email_id,plan,city)
#   PART_MB=64     UPLOAD_PART_SIZE
#   TIMEOUT=1800   seconds the import may take
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
: "${SIZE_MB:=1024}" "${PART_MB:=64}" "${TIMEOUT:=1800}"
need curl sqlite3 split
need_bins broker warmup

machine_line
note "upload: SIZE_MB=$SIZE_MB PART_MB=$PART_MB; temp dir $BTMP"
start_broker
WP=$(freeport)
W=http://127.0.0.1:$WP
start_warmup w "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$BTMP/spool" \
  UPLOAD_PART_SIZE=$((PART_MB * 1024 * 1024))
DB="$BTMP/w/warmup.db"
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$w_PID/status"; }  # kB
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$w_PID/status"; }

CID=$(sqlite3 "$DB" "INSERT INTO campaigns(name, from_addr, template, version, audience, state,
  created_at) VALUES('bench', 'n@b.test', 't', 1, '{\"upload\":true}', 'draft',
  '2026-12-05T00:00:00Z') RETURNING id;")
note "generating $SIZE_MB MB"
$PY - "$BTMP/list.csv" "$SIZE_MB" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
limit = mb * 1024 * 1024
with open(path, "w") as f:
    f.write("name,email_id,plan,city\n")
    n, i, buf = 0, 0, []
    while n < limit:
        line = f"User {i},user{i}@dom{i % 500}.test,{'pro' if i % 3 else 'free'},City {i % 97}\n"
        buf.append(line); n += len(line); i += 1
        if len(buf) == 10000:
            f.write("".join(buf)); buf = []
    f.write("".join(buf))
PY
SIZE=$(stat -c %s "$BTMP/list.csv")
ROWS=$(($(wc -l <"$BTMP/list.csv") - 1))
split -b $((PART_MB * 1024 * 1024)) -d -a 4 "$BTMP/list.csv" "$BTMP/part."
rm -f "$BTMP/list.csv"
H0=$(hwm)

T0=$(now_ms)
curl -s -X POST -H 'Content-Type: application/json' \
  -d "{\"filename\":\"list.csv\",\"size\":$SIZE,\"content_type\":\"text/csv\"}" \
  "$W/campaigns/$CID/upload/init" >"$BTMP/init.json"
U=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["upload_id"])' "$BTMP/init.json") ||
  die "init failed: $(cat "$BTMP/init.json")"
n=0
PARTS=""
for f in "$BTMP"/part.*; do
  n=$((n + 1))
  URL=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["parts"][int(sys.argv[2])-1]["url"])' "$BTMP/init.json" "$n")
  ETAG=$(curl -s -T "$f" -D - -o /dev/null "$URL" | sed -n 's/^[Ee][Tt][Aa][Gg]: *\(.*\)\r$/\1/p')
  [ -n "$ETAG" ] || die "part $n: no ETag"
  PARTS="$PARTS${PARTS:+,}{\"part\":$n,\"etag\":$ETAG}"
  rm -f "$f"
done
T1=$(now_ms)
H1=$(hwm)
code=$(curl -s -o "$BTMP/complete.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d "{\"upload_id\":\"$U\",\"parts\":[$PARTS]}" "$W/campaigns/$CID/upload/complete")
[ "$code" = 202 ] || die "complete: $code $(cat "$BTMP/complete.json")"
RSSMAX=0
state=""
for ((i = 0; i < TIMEOUT * 2; i++)); do
  state=$(curl -s "$W/campaigns/$CID/upload" | $PY -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  r=$(rss)
  [ "$r" -gt "$RSSMAX" ] && RSSMAX=$r
  [ "$state" = done ] || [ "$state" = failed ] && break
  sleep 0.5
done
T2=$(now_ms)
H2=$(hwm)
P=$(curl -s "$W/campaigns/$CID/upload")
IMPORTED=$(echo "$P" | $PY -c 'import json,sys; print(json.load(sys.stdin)["imported"])')
[ "$state" = done ] && [ "$IMPORTED" = "$ROWS" ] || die "import: state=$state imported=$IMPORTED of $ROWS"

echo "upload: $SIZE bytes, $n parts of $PART_MB MiB, $ROWS rows ($(buildtype) build)"
echo "upload: parts PUT in $(fmt_s $((T1 - T0))) s = $(awk -v b="$SIZE" -v ms=$((T1 - T0)) 'BEGIN { printf "%.0f", b / 1048576 * 1000 / ms }') MiB/s"
echo "import: $ROWS rows in $(fmt_s $((T2 - T1))) s = $(fmt_rate "$ROWS" $((T2 - T1))) rows/s"
echo "memory: VmHWM $((H0 / 1024)) MiB before the upload, $((H1 / 1024)) MiB after it, $((H2 / 1024)) MiB after the import (VmRSS at most $((RSSMAX / 1024)) MiB while importing)"
