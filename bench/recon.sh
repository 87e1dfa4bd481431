#!/bin/bash
# recon.sh - GET /emails/{id}/reconciliation over a large health store: a
# store made by health-service (every migration), filled with the sqlite3
# shell (no Kafka: the report reads only the copies), then the report timed
# with curl. Email 1 holds N copies (default 1,000,000), emails 2..1001 1,000
# each: the large email is the worst case (one index range of N rows), a
# small one shows that the other copies are never read. Copies spread over
# DB_FILES files (default 1) round-robin; states: 70 % inbox, 10 % spam,
# 1 % dead letters, 0.1 % complained, the rest not found, sent over 10 days
# (TRACK_WINDOW 7 days: some pending, some missing).
#   BUILD_DIR=$PWD/build-rel N=1000000 DB_FILES=4 bench/recon.sh
. "$(dirname "$0")/common.sh"
need sqlite3
need_bins health
: "${N:=1000000}" "${DB_FILES:=1}" "${REPEAT:=5}"
HP=$(freeport)
H=http://127.0.0.1:$HP
start_health health "$HP" DB_FILES="$DB_FILES" CHECK_INTERVAL=86400
stop_named health
DB=$BTMP/health/health.db
NOW=$(now_ms)
# fill FILE K - the copies of file K (rows i with i % DB_FILES = K)
fill() {
  sqlite3 "$1" <<SQL
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT $2 UNION ALL SELECT i + $DB_FILES FROM n WHERE i + $DB_FILES < $N + 1000000)
INSERT INTO copies(message_id, mid_hash, email_id, broadcast_id, recipient, domain, smtp_client,
  sent_at, bounced, placement, complained)
SELECT printf('<email-%d.%016x@b.test>', e, i), NULL, e, printf('<email-%d@b.test>', e),
  printf('u%d@d%d.test', i, i % 50), printf('d%d.test', i % 50), 'custom',
  $NOW - 864000000 + (i * 7919 % 864000) * 1000, i % 100 = 0,
  CASE WHEN i % 10 < 7 THEN 2 WHEN i % 10 = 7 THEN 3 WHEN i % 10 = 8 THEN 1 ELSE 0 END,
  i % 1000 = 5
FROM (SELECT i, CASE WHEN i < $N THEN 1 ELSE 2 + (i - $N) / 1000 END AS e FROM n);
-- what the ingest keeps beside the copies: the batch's rowids and times, each email's first copy
INSERT INTO copy_batches SELECT min(rowid), max(rowid), min(sent_at), max(sent_at) FROM copies;
INSERT INTO email_stats(email_id, broadcast_id, first_sent_at)
  SELECT email_id, broadcast_id, min(sent_at) FROM copies GROUP BY email_id;
COMMIT;
SQL
}
t0=$(now_ms)
for ((k = 0; k < DB_FILES; k++)); do
  f=$DB; [ "$k" -gt 0 ] && f=$DB.shard$k
  fill "$f" "$k" &
done
wait
note "filled $((N + 1000000)) copies in $(fmt_s $(($(now_ms) - t0))) s"
start_health health "$HP" DB_FILES="$DB_FILES" CHECK_INTERVAL=86400
echo "# $(machine_line)"
echo "# plan (file 0): $(sqlite3 "$DB" "EXPLAIN QUERY PLAN SELECT count(*) FROM copies WHERE rowid >= coalesce((SELECT min(first_rowid) FROM copy_batches WHERE max_sent >= (SELECT first_sent_at FROM email_stats WHERE email_id = 1)), 9223372036854775807) AND email_id = 1" | tr '\n' ' ')"
for e in 1 2; do
  times=""
  for ((r = 0; r < REPEAT; r++)); do
    times="$times $(curl -s -o "$BTMP/r$e.json" -w '%{time_total}' "$H/emails/$e/reconciliation")"
  done
  body=$(jq -c '{tracked, accepted, inbox, spam, bounced, complained, pending, missing, ids: (.missing_ids | length)}' "$BTMP/r$e.json")
  sum=$(jq '.inbox + .spam + .bounced + .complained + .pending + .missing == .tracked' "$BTMP/r$e.json")
  [ "$sum" = true ] || die "email $e: the states do not add up: $body"
  echo "DB_FILES=$DB_FILES email $e: $body; seconds:$times"
done
stop_named health
