#!/bin/bash
# test_kafka.sh - kafka-dev-broker, the outbox publisher and the consumer
# wrapper against the real dev broker (TAP).
#
# Proves: the broker starts, prints its bootstrap list and hosts both topics
# with 3 partitions; outbox rows arrive with keys and values intact (read
# back with kcat and with kconsumer) and leave an empty outbox; a row Kafka
# refuses is kept without blocking the others; with every
# broker down rows stay in the outbox, and after the brokers return all of
# them are delivered; a consumer group member resumes after its last commit
# (nothing lost, nothing re-delivered); a failing handler gets the same
# batch again; stdin control lines; SIGTERM exits 0.
. "$(dirname "$0")/lib.sh"
KC=${KAFKA_CHECK:-$BUILD_DIR/tests/kafka_check}

for bin in "$BROKER_BIN" "$KC"; do
  [ -x "$bin" ] || { echo "Bail out! $bin is missing (build first)"; exit 1; }
done
command -v kcat >/dev/null || { echo "Bail out! kcat is not installed"; exit 1; }

D=$TMP/kafka
mkdir -p "$D"
DB=$D/outbox.db

# last_stat FILE KEY - value of KEY=... in the last "stats" line of FILE
last_stat() { grep '^stats ' "$1" | tail -1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# kread TOPIC - every message of TOPIC as KEY<TAB>VALUE
kread() { kcat -b "$BROKERS" -C -t "$1" -e -q -f '%k\t%s\n' 2>/dev/null; }
# consumed_field FILE KEY - value of KEY=... on the "consume" summary line
consumed_field() { grep '^consume ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# --- the broker ---------------------------------------------------------
start_broker "$D/b1"
ok $? "kafka-dev-broker starts and writes its bootstrap file"
eq "bootstrap list printed on stdout" "$(head -1 "$D/b1/broker.out")" "$BROKERS"
eq "bootstrap list names 3 brokers" \
  "$(tr ',' '\n' <<<"$BROKERS" | grep -c '^127\.0\.0\.1:[0-9][0-9]*$')" 3
kcat -b "$BROKERS" -L >"$D/meta.txt" 2>&1
check "topic email-events has 3 partitions" -- grep -q 'topic "email-events" with 3 partitions' "$D/meta.txt"
check "topic emailId-events has 3 partitions" -- grep -q 'topic "emailId-events" with 3 partitions' "$D/meta.txt"

# --- outbox -> Kafka ------------------------------------------------------
# --poll-ms 10000: without the notify the publisher would sleep 10 s
"$KC" produce "$DB" "$BROKERS" email-events 20 run1 20 --poll-ms 10000 >"$D/run1.rows" 2>"$D/run1.log"
ok $? "outbox rows for email-events are published (outbox empty)"
ms=$(sed -n 's/^produce .* ms=\([0-9]*\)$/\1/p' "$D/run1.log")
check "notify wakes the publisher (${ms:-?} ms < 5000)" -- test "${ms:-99999}" -lt 5000
"$KC" produce "$DB" "$BROKERS" emailId-events 10 user1 20 >"$D/user1.rows" 2>"$D/user1.log"
ok $? "outbox rows for emailId-events are published"
eq "outbox table is empty" "$("$KC" count "$DB" 2>/dev/null)" 0
eq "20 rows were added" "$(wc -l <"$D/run1.rows")" 20

kread email-events | sort >"$D/run1.kcat"
sort "$D/run1.rows" >"$D/run1.want"
check "kcat reads email-events with keys and values intact" -- cmp "$D/run1.kcat" "$D/run1.want"
kread emailId-events | sort >"$D/user1.kcat"
check "kcat reads emailId-events with keys and values intact" -- cmp "$D/user1.kcat" <(sort "$D/user1.rows")
check "values are byte-identical UTF-8 JSON" -- grep -q $'h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \\\\"q\\\\"' "$D/run1.kcat"

"$KC" consume "$BROKERS" read1 email-events 20 60 --offsets >"$D/read1.out" 2>"$D/read1.log"
ok $? "kconsumer receives the 20 events"
cut -f3- "$D/read1.out" | sort >"$D/read1.kv"
check "kconsumer sees keys and values intact" -- cmp "$D/read1.kv" "$D/run1.want"
check "kconsumer sees the partitions and offsets kcat sees" -- test \
  "$(kcat -b "$BROKERS" -C -t email-events -e -q -f '%p\t%o\t%k\t%s\n' | sort)" = "$(sort "$D/read1.out")"

# --- a row Kafka refuses (over message.max.bytes) is kept and blocks nothing
PDB=$D/poison.db
"$KC" add "$PDB" emailId-events 1 big --pad 1100000 >/dev/null 2>"$D/big.log"
"$KC" produce "$PDB" "$BROKERS" emailId-events 3 afterbig 5 >"$D/afterbig.rows" 2>"$D/afterbig.log"
eq "an oversized row stays in the outbox, the rows after it do not" "$("$KC" count "$PDB" 2>/dev/null)" 1
check "the oversized row is logged as an error" -- grep -q 'error .*id=1 .*cannot be produced' "$D/afterbig.log"
check "rows after the oversized one arrive" -- test "$(kread emailId-events | grep -c '"run":"afterbig"')" = 3

# delivered rows are deleted in ranges of consecutive ids: one in the middle
# that Kafka refuses stays, its neighbours on both sides go
PDB2=$D/poison2.db
"$KC" add "$PDB2" emailId-events 500 beforemid >/dev/null 2>"$D/beforemid.log"
"$KC" add "$PDB2" emailId-events 1 bigmid --pad 1100000 >/dev/null 2>>"$D/beforemid.log"
"$KC" add "$PDB2" emailId-events 500 aftermid >/dev/null 2>>"$D/beforemid.log"
"$KC" publish "$PDB2" "$BROKERS" --timeout 4 >/dev/null 2>"$D/aftermid.log"
eq "a refused row between delivered ones is the only row left" "$(sqlite3 "$PDB2" 'SELECT group_concat(id) FROM outbox')" 501
check "the rows on both sides of it arrive" -- test "$(kread emailId-events | grep -c '"run":"\(beforemid\|aftermid\)"')" = 1000

# --- outage: every broker down ------------------------------------------
"$KC" publish "$DB" "$BROKERS" --msg-timeout 3000 >"$D/pub.out" 2>"$D/pub.log" &
PUB=$!; track $PUB
wait_for 15 bash -c "[ \"\$(grep '^stats ' '$D/pub.out' | tail -1 | grep -o 'kafka_up=1')\" ]"
ok $? "publisher reports kafka_up=1"
kill -USR1 "$BROKER_PID"
wait_for 10 grep -q 'all 3 brokers down (SIGUSR1)' "$D/b1/broker.log"
ok $? "SIGUSR1 takes every broker down"
"$KC" add "$DB" emailId-events 30 outage >"$D/outage.rows" 2>"$D/outage.log"
ok $? "30 rows added while Kafka is down"
wait_for 20 bash -c "[ \"\$(grep '^stats ' '$D/pub.out' | tail -1 | grep -o 'kafka_up=0')\" ]"
ok $? "publisher reports kafka_up=0"
# message.timeout.ms is 3 s: wait for failed deliveries, i.e. the retry path
wait_for 20 bash -c "f=\$(grep '^stats ' '$D/pub.out' | tail -1 | sed -n 's/.*failed=\([0-9]*\).*/\1/p'); [ \"\${f:-0}\" -gt 0 ]"
ok $? "deliveries fail while the brokers are down (failed=$(last_stat "$D/pub.out" failed))"
eq "all 30 rows stay in the outbox during the outage" "$("$KC" count "$DB" 2>/dev/null)" 30
kill -USR2 "$BROKER_PID"
wait_for 10 grep -q 'all 3 brokers up (SIGUSR2)' "$D/b1/broker.log"
ok $? "SIGUSR2 brings the brokers back"
s=$(date +%s)
wait_for 90 bash -c "[ \"\$('$KC' count '$DB' 2>/dev/null)\" = 0 ]"
ok $? "outbox drains after the brokers return ($(($(date +%s) - s)) s)"
wait_for 10 bash -c "[ \"\$(grep '^stats ' '$D/pub.out' | tail -1 | grep -o 'kafka_up=1')\" ]"
ok $? "publisher reports kafka_up=1 again"
# the table is empty now, so SQLite hands out ids 1.. again: the running
# publisher must still see these rows as new
"$KC" add "$DB" emailId-events 10 reuse >"$D/reuse.rows" 2>"$D/reuse.log"
wait_for 30 bash -c "[ \"\$('$KC' count '$DB' 2>/dev/null)\" = 0 ]"
ok $? "rows that reuse ids of deleted rows are published too"
stop_pid $PUB
eq "publisher exits 0 on SIGTERM" "$?" 0
check "reused-id rows arrive" -- test "$(kread emailId-events | grep -c '"run":"reuse"')" -ge 10
kread emailId-events | grep '"run":"outage"' >"$D/outage.kcat"
eq "every outage event delivered (distinct values)" "$(sort -u "$D/outage.kcat" | wc -l)" 30
check "outage events arrive intact" -- cmp <(sort -u "$D/outage.kcat") <(sort "$D/outage.rows")
echo "# outage events in the topic: $(wc -l <"$D/outage.kcat") (duplicates allowed, at least once)"

# --- consumer group resumes after its last commit ------------------------
"$KC" produce "$DB" "$BROKERS" email-events 25 grp 20 >"$D/grp.rows" 2>"$D/grp.log"
ok $? "25 more events published for the group test"
"$KC" consume "$BROKERS" resume email-events 15 60 --batch 5 >"$D/resume1.out" 2>"$D/resume1.log"
ok $? "first member handles at least 15 of 45 events, then stops cleanly"
n1=$(wc -l <"$D/resume1.out")
"$KC" produce "$DB" "$BROKERS" email-events 5 late 20 >"$D/late.rows" 2>"$D/late.log"
ok $? "5 events published while the group has no member"
"$KC" consume "$BROKERS" resume email-events $((50 - n1)) 90 --wait-lag >"$D/resume2.out" 2>"$D/resume2.log"
ok $? "restarted member gets the remaining $((50 - n1)) events"
n2=$(wc -l <"$D/resume2.out")
eq "first + second member handled exactly 50 events" "$((n1 + n2))" 50
eq "no event lost (50 distinct)" "$(sort -u "$D/resume1.out" "$D/resume2.out" | wc -l)" 50
eq "none re-delivered to the restarted member" \
  "$(comm -12 <(sort "$D/resume1.out") <(sort "$D/resume2.out") | wc -l)" 0
check "restarted member resumed where the first stopped (saw the late events)" -- \
  test "$(grep -c '"run":"late"' "$D/resume2.out")" = 5
eq "lag is 0 after reading everything" "$(consumed_field "$D/resume2.log" lag)" 0
echo "# first member: $n1 events in $(consumed_field "$D/resume1.log" total_ms) ms;" \
  "restart: $n2 in $(consumed_field "$D/resume2.log" total_ms) ms"

# --- a failing handler gets the same batch again -------------------------
"$KC" consume "$BROKERS" retry email-events 50 90 --batch 7 --fail 3 --offsets >"$D/retry.out" 2>"$D/retry.log"
ok $? "consumer with a failing handler still gets all 50 events"
eq "exactly 50 handled, none twice" "$(cut -f1,2 "$D/retry.out" | sort -u | wc -l) $(wc -l <"$D/retry.out")" "50 50"
check "offsets contiguous from 0 in each partition (nothing skipped)" -- awk -F'\t' \
  '{ if ($2 != next_[$1] + 0) exit 1; next_[$1] = $2 + 1 }' "$D/retry.out"
calls=$(consumed_field "$D/retry.log" calls); batches=$(consumed_field "$D/retry.log" batches)
eq "handler called 3 extra times for the retried batch" "$calls" "$((batches + 3))"

# --- the same through the pipeline (prepare on the consumer thread, apply on the writer)
"$KC" consume "$BROKERS" retry-pipe email-events 50 90 --batch 7 --fail 3 --offsets --pipeline >"$D/rpipe.out" 2>"$D/rpipe.log"
ok $? "pipelined consumer with a failing apply still gets all 50 events"
eq "pipeline: exactly 50 applied, none twice" "$(cut -f1,2 "$D/rpipe.out" | sort -u | wc -l) $(wc -l <"$D/rpipe.out")" "50 50"
check "pipeline: offsets contiguous from 0 in each partition (nothing skipped)" -- awk -F'\t' \
  '{ if ($2 != next_[$1] + 0) exit 1; next_[$1] = $2 + 1 }' "$D/rpipe.out"
eq "pipeline: apply called 3 extra times for the retried batch" "$(consumed_field "$D/rpipe.log" calls)" \
  "$(($(consumed_field "$D/rpipe.log" batches) + 3))"
eq "pipeline: every prepared batch released" "$(consumed_field "$D/rpipe.log" prepares)" \
  "$(consumed_field "$D/rpipe.log" releases)"
check "pipeline: same events as the one-handler consumer" -- cmp <(sort "$D/retry.out") <(sort "$D/rpipe.out")

# --- a second member joins while the first applies slowly: rebalance mid-pipeline
total=$(kcat -C -b "$BROKERS" -t email-events -e -q -f '%p %o\n' 2>/dev/null | wc -l)
rm -f "$D/stop"
"$KC" consume "$BROKERS" rebal email-events 100000 120 --batch 5 --slow 400 --offsets --pipeline \
  --stop-file "$D/stop" >"$D/rebA.out" 2>"$D/rebA.log" &
RA=$!; track $RA
wait_for 30 bash -c "[ \$(wc -l <'$D/rebA.out') -ge 10 ]"
ok $? "first member applies (slowly)"
"$KC" consume "$BROKERS" rebal email-events 100000 120 --batch 5 --offsets --pipeline \
  --stop-file "$D/stop" >"$D/rebB.out" 2>"$D/rebB.log" &
RB=$!; track $RB
both_have_all() { [ "$(cat "$D/rebA.out" "$D/rebB.out" | cut -f1,2 | sort -u | wc -l)" -ge "$total" ]; }
wait_for 90 both_have_all
ok $? "the two members together applied all $total events"
touch "$D/stop"
wait $RA; ra=$?
wait $RB; rb=$?
eq "both members stop cleanly" "$ra $rb" "0 0"
check "the first member gave partitions up (revoked) while it was busy" -- grep -q 'kconsumer: revoked' "$D/rebA.log"
check "the second member got partitions in the rebalance" -- grep -q 'kconsumer: assigned [1-9]' "$D/rebB.log"
check "no event lost: offsets contiguous from 0 in each partition over both members" -- bash -c \
  "cat '$D/rebA.out' '$D/rebB.out' | cut -f1,2 | sort -u -t\$'\t' -k1,1n -k2,2n | awk -F'\t' '{ if (\$2 != next_[\$1] + 0) exit 1; next_[\$1] = \$2 + 1 }'"
eq "every prepared batch released (first member)" "$(consumed_field "$D/rebA.log" prepares)" "$(consumed_field "$D/rebA.log" releases)"
eq "every prepared batch released (second member)" "$(consumed_field "$D/rebB.log" prepares)" "$(consumed_field "$D/rebB.log" releases)"
echo "# rebalance: first member $(wc -l <"$D/rebA.out"), second $(wc -l <"$D/rebB.out"), events $total," \
  "applied twice $(($(cat "$D/rebA.out" "$D/rebB.out" | wc -l) - total)) (at least once: a commit refused during the rebalance)"

# --- stdin control, -n/-p/-t ---------------------------------------------
mkfifo "$D/ctl"
exec 7<>"$D/ctl"
"$BROKER_BIN" -n 2 -p 1 -t solo -f "$D/b2.bootstrap" <"$D/ctl" >"$D/b2.out" 2>"$D/b2.log" &
B2=$!; track $B2
wait_for 10 test -s "$D/b2.bootstrap"
ok $? "second broker (-n 2 -p 1 -t solo) starts"
B2S=$(head -1 "$D/b2.bootstrap")
kcat -b "$B2S" -L >"$D/meta2.txt" 2>&1
check "-t replaces the default topics" -- bash -c "grep -q 'topic \"solo\" with 1 partitions' '$D/meta2.txt' && ! grep -q email-events '$D/meta2.txt'"
check "-n 2 gives 2 brokers" -- grep -q ' 2 brokers:' "$D/meta2.txt"
printf 'down 2\nup 9\nbogus\nup 2\ndown\nup\n' >&7
wait_for 10 grep -q 'ok: all 2 brokers up' "$D/b2.log"
ok $? "stdin control lines are acknowledged"
check "down N / up N acknowledged per broker" -- bash -c "grep -q 'ok: broker 2 down' '$D/b2.log' && grep -q 'ok: broker 2 up' '$D/b2.log'"
check "bad control lines are refused" -- bash -c "grep -q \"unknown command 'up 9'\" '$D/b2.log' && grep -q \"unknown command 'bogus'\" '$D/b2.log'"
exec 7>&-
stop_pid $B2
eq "second broker exits 0 on SIGTERM" "$?" 0

stop_pid "$BROKER_PID"
eq "broker exits 0 on SIGTERM" "$?" 0
check "no sanitizer report from the broker" -- bash -c "! grep -qE 'Sanitizer|runtime error:' '$D/b1/broker.log' '$D/b2.log'"
check "no sanitizer report from kafka_check" -- bash -c "! grep -lE 'Sanitizer|runtime error:' '$D'/*.log"
finish
