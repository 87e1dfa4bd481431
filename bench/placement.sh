#!/bin/bash
# placement.sh - the placement.summary round and GET /providers over a large
# health store: a store made by health-service (every migration), filled
# with the sqlite3 shell, then health-service started on it with a
# kafka-dev-broker; the rounds' times come from its debug log ("placement
# round: R rows read in X ms, ..."), /providers is timed with curl.
# N copies (default 1,000,000), every one sent within FEEDBACK_WINDOW (the
# worst case: the round reads them all), from 100 identities to 50 domains
# (THROTTLES_FILE: three providers of ten domains, twenty domains alone:
# 2,300 pairs); 70 % inbox, 10 % spam, 10 % not found, 10 % not checked,
# 1 % dead letters, 0.1 % complained; found within an hour of sending.
# TRACK_WINDOW=60 keeps the feedback loops idle (no copy is that recent), so
# the rounds are the placement thread's alone. Copies spread over DB_FILES
# files (default 1) round-robin.
#   BUILD_DIR=$PWD/build-rel N=1000000 DB_FILES=4 bench/placement.sh
. "$(dirname "$0")/common.sh"
need sqlite3
need jq
need_bins health broker
: "${N:=1000000}" "${DB_FILES:=1}" "${REPEAT:=5}" "${ROUNDS_S:=40}"
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
WITH RECURSIVE n(i) AS (SELECT $2 UNION ALL SELECT i + $DB_FILES FROM n WHERE i + $DB_FILES < $N),
c(i, sent, place) AS (SELECT i, $NOW - 600000 - (i * 7919 % 85000) * 1000,
  CASE WHEN i % 10 < 7 THEN 2 WHEN i % 10 = 7 THEN 3 WHEN i % 10 = 8 THEN 1 ELSE 0 END FROM n)
INSERT INTO copies(message_id, mid_hash, email_id, broadcast_id, recipient, domain, smtp_client,
  sent_at, bounced, placement, complained, identity, found_at)
SELECT printf('<email-%d.%016x@b.test>', i / 10000 + 1, i), NULL, i / 10000 + 1,
  printf('<email-%d@b.test>', i / 10000 + 1), printf('u%d@d%d.test', i, i % 50),
  printf('d%d.test', i % 50), 'custom', sent, i % 100 = 0, place, i % 1000 = 5,
  printf('id%d@acme.test', i / 50 % 100),
  CASE WHEN place IN (2, 3) THEN sent + (i * 104729 % 3600) * 1000 END
FROM c;
-- what the ingest keeps beside the copies: the batch's rowids and sending times
INSERT INTO copy_batches SELECT min(rowid), max(rowid), min(sent_at), max(sent_at) FROM copies;
COMMIT;
SQL
}
t0=$(now_ms)
for ((k = 0; k < DB_FILES; k++)); do
  f=$DB
  [ "$k" -gt 0 ] && f=$DB.shard$k
  fill "$f" "$k" &
done
wait
note "filled $N copies in $(fmt_s $(($(now_ms) - t0))) s"
$PY - >"$BTMP/throttles.json" <<'PY'
import json
print(json.dumps([{"provider": p, "domains": [f"d{k}.test" for k in range(10 * g, 10 * g + 10)]}
                  for g, p in enumerate(("gmail", "yahoo", "outlook"))]))
PY
start_broker
BENCH_LOG_LEVEL=debug start_health health "$HP" DB_FILES="$DB_FILES" CHECK_INTERVAL=5 \
  TRACK_WINDOW=60 THROTTLES_FILE="$BTMP/throttles.json"
echo "# $(machine_line)"
echo "# plan (file 0): $(sqlite3 "$DB" "EXPLAIN QUERY PLAN SELECT identity, domain, count(*) FROM copies WHERE rowid >= coalesce((SELECT min(first_rowid) FROM copy_batches WHERE max_sent >= 0), 9223372036854775807) AND sent_at >= 0 GROUP BY identity, domain" | tr '\n' ' ')"
sleep "$ROUNDS_S"
rounds=$(grep -o 'placement round: .*' "$BTMP/health/out.log")
[ -n "$rounds" ] || die "no placement round logged"
first=$(head -1 <<<"$rounds")
echo "DB_FILES=$DB_FILES N=$N first round (every pair published): $first"
echo "DB_FILES=$DB_FILES N=$N later rounds (nothing changed), ms to read / in all:" \
  "$(tail -n +2 <<<"$rounds" | sed -n 's/.*read in \([0-9]*\) ms.* \([0-9]*\) ms in all/\1\/\2/p' | tr '\n' ' ')"
echo "DB_FILES=$DB_FILES summaries published: $(metric "$H" health_placement_summaries_total)"
times=""
for ((r = 0; r < REPEAT; r++)); do
  times="$times $(curl -s -o "$BTMP/providers.json" -w '%{time_total}' "$H/providers")"
done
total=$(jq '[.[] | .checked] | add' "$BTMP/providers.json")
echo "DB_FILES=$DB_FILES GET /providers: $(jq 'length' "$BTMP/providers.json") providers, $total checked; gmail $(jq -c '.gmail | {checked, inbox_rate, spam_rate, time_to_inbox_s}' "$BTMP/providers.json"); seconds:$times"
stop_named health
