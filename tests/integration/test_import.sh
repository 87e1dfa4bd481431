#!/bin/bash
# test_import.sh - a 100 MB CSV import is streamed: the service's peak
# memory grows by far less than the file, every valid row is registered
# with its event, every invalid row is counted.
. "$(dirname "$0")/lib.sh"

# ASan keeps freed memory in a 256 MB quarantine, which would hide what
# the service itself holds: keep it small for this measurement
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}:quarantine_size_mb=1"
start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
WP=$(freeport); W=http://127.0.0.1:$WP
start_warmup warmup "$WP" LOG_LEVEL=info; ok $? "warmup-service starts"
$PY - "$TMP/big.csv" <<'PY'
import sys
with open(sys.argv[1], "w", newline="") as f:
    f.write("\ufeffname,email_id\r\n")
    for i in range(20000):
        f.write(f'"User, {i}",user{i}@big{i % 7}.test\r\n')
    pad = "x" * 400  # a name over 256 bytes: invalid
    i = 0
    while f.tell() < 100 * 1024 * 1024:
        f.write(f"{pad},pad{i}@pad.test\r\n"); i += 1
PY
size=$(stat -c %s "$TMP/big.csv")
hwm() { awk '/VmHWM/{print $2}' "/proc/$warmup_PID/status"; }
before=$(hwm)
r=$(curl -s -w ' %{http_code}' -H 'Content-Type: text/csv' -T "$TMP/big.csv" -X POST "$W/users/import")
after=$(hwm)
eq "100 MB import -> 200" "${r##* }" 200
body=${r% *}
eq "20000 imported, no duplicates" "$(jget "$body" '[j["imported"], j["duplicates"]]')" "[20000, 0]"
rows=$(( $(wc -l < "$TMP/big.csv") - 1 - 20000 ))
eq "every invalid row counted" "$(jget "$body" 'j["invalid_total"]')" "$rows"
eq "the first 1000 invalid rows are listed" "$(jget "$body" '[len(j["invalid"]), j["invalid"][0]["line"]]')" "[1000, 20002]"
growth=$(( (after - before) / 1024 ))
echo "# file $((size / 1048576)) MB, peak RSS $((before / 1024)) -> $((after / 1024)) MB"
check "peak RSS grew by less than 48 MB for a $((size / 1048576)) MB body" -- test "$growth" -lt 48
r=$(curl -s "$W/emailIds")
eq "all 20000 users are listed by /emailIds" "$(jget "$r" 'len(j)')" 20000
pending() { curl -s "$W/metrics" | awk '$1=="outbox_pending"{print $2}'; }
pending0() { [ "$(pending)" = 0 ]; }
wait_for 120 pending0
ok $? "outbox drained"
eq "20000 events on Kafka" "$(kcat -b "$BROKERS" -C -t emailId-events -e -q -f '%k\n' 2>/dev/null | wc -l)" 20000
stop_named warmup; eq "warmup exits 0" "$STOP_RC" 0

# a body over IMPORT_MAX_BYTES: 413, announced or chunked
start_warmup small "$WP" IMPORT_MAX_BYTES=1048576; ok $? "starts with IMPORT_MAX_BYTES=1 MiB"
head -c 2000000 "$TMP/big.csv" > "$TMP/2mb.csv"
r=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/csv' --data-binary @"$TMP/2mb.csv" "$W/users/import")
eq "2 MB with Content-Length -> 413" "$r" 413
r=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/csv' -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/2mb.csv" "$W/users/import")
eq "2 MB chunked -> 413" "$r" 413
check "still up" -- curl -fsS "$W/healthz"
stop_named small; eq "exits 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup
check "no sanitizer report (small)" -- sanitizer_clean small
stop_pid "$BROKER_PID"
finish
