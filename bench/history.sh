#!/bin/bash
# history.sh - GET /history latency over N copies (DESIGN 9.6; seed 004's
# target 200 ms, goal 20 ms), beside GET /healthz on the same server.
#
# The copies are written straight into the service's SQLite file (sqlite3
# CLI, one recursive INSERT), not sent: the service migrates an empty file
# first, is stopped, the history indexes are dropped, N copies of N/10000
# emails to N/10 recipients (10 copies each, 50 domains) are inserted with
# updated_at spread over 9 days (98 % sent, 1 % retry, 1 % dead), the
# indexes are made again with the service's own definitions, and the
# service is started on the file. Each shape is then asked REPEAT times on
# one keep-alive connection, each request with another value (curl -K),
# after a first request whose answer is checked:
#   recipient     ?recipient=<one of N/10>                    (10 copies)
#   email_id      ?email_id=<one of N/10000>                  (a page of 100)
#   status_range  ?status=dead&from=<t>&to=<t + 1 h>          (a page of up to 100)
#   sent_range    ?status=sent&from=<t>&to=<t + 1 h>          (a page of 100)
#   deep_cursor   ?cursor=<an id near N/2>                    (a page of 100)
#
#   N=1000000      copies (full figure: N=10000000)
#   REPEAT=200     requests per shape
# BENCH_DB=postgres: the same rows in PostgreSQL (psql), deliveries
# partitioned by month (the copies' months made first), then vacuumed.
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
: "${N:=1000000}" "${REPEAT:=200}"
need curl jq
[ "$BENCH_DB" = postgres ] || need sqlite3
need_bins broker warmup
TARGET_MS=200
GOAL_MS=20

machine_line
note "history: N=$N REPEAT=$REPEAT; temp dir $BTMP"
start_broker
WP=$(freeport); W=http://127.0.0.1:$WP
start_warmup w "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$BTMP/spool"
stop_named w
NE=$(((N + 9999) / 10000)); U=$(((N + 9) / 10))
NOW=$(now_ms); T0=$((NOW - 10 * 86400000)); SPAN=$((9 * 86400000))
if [ "$BENCH_DB" = postgres ]; then
  # the same rows with psql: the months they were made in get their
  # partitions (the service makes the current month's and later ones)
  HIST=('deliveries_email' 'deliveries_recipient' 'deliveries_state' 'deliveries_updated')
  IDX=$(pg_sql w_w "SELECT string_agg(indexdef, ';' || chr(10)) || ';' FROM pg_indexes
    WHERE tablename = 'deliveries' AND indexname IN ('${HIST[0]}', '${HIST[1]}', '${HIST[2]}', '${HIST[3]}')")
  IDX=${IDX// ON ONLY / ON } # the partitioned index, on every partition
  [ -n "$IDX" ] || die "the history indexes are missing from the PostgreSQL schema"
  t0=$(now_ms)
  pg_sql w_w "DO \$\$ DECLARE m timestamptz := date_trunc('month', to_timestamp($T0 / 1000.0) AT TIME ZONE 'UTC')
      AT TIME ZONE 'UTC'; nm text; BEGIN
    WHILE m < date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' LOOP
      nm := 'deliveries_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
      IF to_regclass(nm) IS NULL THEN EXECUTE format('CREATE TABLE %I PARTITION OF deliveries FOR VALUES
        FROM (%s) TO (%s)', nm, (extract(epoch FROM m) * 1000)::bigint,
        (extract(epoch FROM m + interval '1 month') * 1000)::bigint); END IF;
      m := m + interval '1 month'; END LOOP; END \$\$" >/dev/null || die "making the partitions failed"
  pg_sql w_w "DROP INDEX ${HIST[0]}; DROP INDEX ${HIST[1]}; DROP INDEX ${HIST[2]}; DROP INDEX ${HIST[3]};
    INSERT INTO emails(id, message_id, from_addr, subject, body, smtp_client, salt, msgid_domain, created_at)
      SELECT i, '<email-' || i || '@bench.test>', 'a@bench.test', 's', 'b', 'custom', md5(random()::text),
      'bench.test', '2026-12-01T00:00:00Z' FROM generate_series(1, $NE) i;
    SELECT setval('emails_id_seq', $NE);
    INSERT INTO deliveries(id, email_id, user_id, recipient, name, state, attempts, due_at, last_code,
      last_reply, updated_at, created_ms)
      SELECT i, 1 + (i - 1) / 10000, 0, 'user' || ((i - 1) % $U) || '@d' || ((i - 1) % $U % 50) || '.bench.test', '',
      CASE i % 100 WHEN 0 THEN 4 WHEN 1 THEN 3 ELSE 2 END, 1, CASE i % 100 WHEN 1 THEN $NOW ELSE 0 END,
      CASE i % 100 WHEN 0 THEN 550 WHEN 1 THEN 451 ELSE 250 END, '250 2.0.0 Ok', $T0 + i * ($SPAN::bigint / $N),
      $T0 + i * ($SPAN::bigint / $N) FROM generate_series(1, $N) i;
    SELECT setval('deliveries_id_seq', $N);
    $IDX" >/dev/null || die "generating the copies failed"
  # as autovacuum leaves the table (index-only reads need its visibility map)
  pg_sql w_w "VACUUM ANALYZE" >/dev/null || die "VACUUM ANALYZE failed"
  note "generated $N copies in $(fmt_s $(($(now_ms) - t0))) s; database $(pg_sql w_w "SELECT pg_database_size(current_database()) / 1048576") MB"
else
DB=$BTMP/w/warmup.db
IDX=$(sqlite3 "$DB" "SELECT group_concat(sql, ';' || char(10)) || ';' FROM sqlite_master WHERE type = 'index'
  AND name IN ('deliveries_email', 'deliveries_recipient', 'deliveries_state', 'deliveries_updated')")
[ -n "$IDX" ] || die "the history indexes are missing from $DB (migration 10)"
t0=$(now_ms)
sqlite3 "$DB" <<SQL || die "generating the copies failed"
PRAGMA synchronous=OFF;
DROP INDEX deliveries_email; DROP INDEX deliveries_recipient;
DROP INDEX deliveries_state; DROP INDEX deliveries_updated;
BEGIN;
WITH RECURSIVE e(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM e WHERE i < $NE)
INSERT INTO emails(id, message_id, from_addr, subject, body, smtp_client, salt, msgid_domain, created_at)
  SELECT i, '<email-' || i || '@bench.test>', 'a@bench.test', 's', 'b', 'custom', lower(hex(randomblob(16))),
  'bench.test', '2026-12-01T00:00:00Z' FROM e;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $N)
INSERT INTO deliveries(id, email_id, user_id, recipient, name, state, attempts, due_at, last_code,
  last_reply, updated_at)
  SELECT i, 1 + (i - 1) / 10000, 0, 'user' || ((i - 1) % $U) || '@d' || ((i - 1) % $U % 50) || '.bench.test', '',
  CASE i % 100 WHEN 0 THEN 4 WHEN 1 THEN 3 ELSE 2 END, 1, CASE i % 100 WHEN 1 THEN $NOW ELSE 0 END,
  CASE i % 100 WHEN 0 THEN 550 WHEN 1 THEN 451 ELSE 250 END, '250 2.0.0 Ok', $T0 + i * ($SPAN / $N) FROM c;
COMMIT;
$IDX
SQL
note "generated $N copies in $(fmt_s $(($(now_ms) - t0))) s; file $(du -m "$DB" | cut -f1) MB"
fi
start_warmup w "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$BTMP/spool"

# cursor ID - the next_cursor of an unfiltered page ending at ID (api_history.c's format)
cursor() { $PY -c '
import hashlib, sys
i = int(sys.argv[1])
h = hashlib.sha256(("history-cursor-1|%d||0|-1|0:0|0:0" % i).encode()).hexdigest()[:16]
print("%016x%s" % (i, h))' "$1"; }
# urls SHAPE - REPEAT request lines of a shape (random values, fixed seed)
urls() { $PY - "$1" "$REPEAT" "$W" "$N" "$U" "$NE" "$T0" "$SPAN" <<'PY'
import hashlib, random, sys, time
shape, rep, w = sys.argv[1], int(sys.argv[2]), sys.argv[3]
n, u, ne, t0, span = (int(x) for x in sys.argv[4:9])
random.seed(7)
def iso(ms): return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + "Z"
for _ in range(rep):
    if shape == "recipient":
        k = random.randrange(u); q = f"recipient=user{k}@d{k % 50}.bench.test"
    elif shape == "email_id":
        q = f"email_id={random.randint(1, ne)}"
    elif shape in ("status_range", "sent_range"):
        t = t0 + random.randrange(span - 3600000)
        q = f"status={'dead' if shape == 'status_range' else 'sent'}&from={iso(t)}&to={iso(t + 3600000)}"
    else:
        i = n // 2 + random.randrange(n // 4)
        h = hashlib.sha256(("history-cursor-1|%d||0|-1|0:0|0:0" % i).encode()).hexdigest()[:16]
        q = "cursor=%016x%s" % (i, h)
    print(f'url = "{w}/history?{q}"\noutput = /dev/null')
PY
}
ROWS=()
# shape NAME CHECK_QUERY JQ_CHECK - checks one answer, then REPEAT requests
shape() {
  local name=$1 q=$2 chk=$3 got stats
  got=$(curl -s "$W/history?$q" | jq -r "$chk")
  [ "$got" = true ] || die "$name: GET /history?$q fails the check $chk"
  urls "$name" >"$BTMP/curl.cfg"
  stats=$(curl -s -K "$BTMP/curl.cfg" -w '%{http_code} %{time_total}\n' |
    awk '$1 != 200 { bad++ } { print $2 * 1000 } END { if (bad) exit 1 }' |
    sort -n | awk '{ t[NR] = $1 } END {
      printf "%.2f %.2f %.2f", t[int((NR + 1) * 0.50)], t[int((NR * 0.95) + 0.999)], t[NR] }') ||
    die "$name: a request was not answered 200"
  ROWS+=("$name $stats")
}
for ((i = 0; i < REPEAT; i++)); do printf 'url = "%s"\noutput = /dev/null\n' "$W/healthz"; done >"$BTMP/curl.cfg"
HZ=$(curl -s -K "$BTMP/curl.cfg" -w '%{time_total}\n' | awk '{ print $1 * 1000 }' | sort -n |
  awk '{ t[NR] = $1 } END { printf "%.2f %.2f %.2f", t[int((NR + 1) * 0.50)], t[int((NR * 0.95) + 0.999)], t[NR] }')
shape recipient "recipient=USER7@d7.bench.test" '[.copies[].recipient] | length == 10 and all(. == "user7@d7.bench.test")'
shape email_id "email_id=$NE" '(.copies | length) == ([100, '"$N"' - ('"$NE"' - 1) * 10000] | min) and all(.copies[]; .email_id == '"$NE"')'
shape status_range "status=dead&from=$(date -u -d "@$((T0 / 1000 + 86400))" +%FT%TZ)&to=$(date -u -d "@$((T0 / 1000 + 90000))" +%FT%TZ)" \
  '(.copies | length) > 0 and all(.copies[]; .status == "dead")'
shape sent_range "status=sent&from=$(date -u -d "@$((T0 / 1000 + 86400))" +%FT%TZ)&to=$(date -u -d "@$((T0 / 1000 + 90000))" +%FT%TZ)" \
  '(.copies | length) > 0 and all(.copies[]; .status == "sent")'
C=$(cursor $((N / 2)))
shape deep_cursor "cursor=$C" '(.copies | length) == 100 and .copies[0].id == '"$((N / 2 - 1))"
# shellcheck disable=SC2154 # w_PID is set by start_warmup
hwm=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$w_PID/status")
stop_named w

echo "GET /history over N=$N copies ($NE emails, $U recipients, 9 days of updated_at; 98 % sent, 1 % retry, 1 % dead);" \
  "REPEAT=$REPEAT per shape, each request another value, one keep-alive connection"
printf '%-14s %9s %9s %9s %12s %12s\n' shape "p50 ms" "p95 ms" "max ms" "p95/target" "p95/goal"
# shellcheck disable=SC2086 # HZ holds three figures
printf '%-14s %9s %9s %9s %12s %12s\n' healthz $HZ - -
for r in "${ROWS[@]}"; do
  # shellcheck disable=SC2086
  set -- $r
  printf '%-14s %9s %9s %9s %12s %12s\n' "$1" "$2" "$3" "$4" "$(fmt_ratio "$3" "$TARGET_MS")" "$(fmt_ratio "$3" "$GOAL_MS")"
done
echo "(target $TARGET_MS ms, goal $GOAL_MS ms per query; warmup-service peak RSS $hwm MB)"
for r in "${ROWS[@]}"; do
  # shellcheck disable=SC2086
  set -- $r
  summary "history $1 N=$N ($BENCH_DB)" "p50 $2 ms, p95 $3 ms" "p95 <= $GOAL_MS ms" "x$(fmt_ratio "$3" "$GOAL_MS") $(verdict "$3 <= $GOAL_MS")"
done
