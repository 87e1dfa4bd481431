#!/bin/bash
# test_outbox_pg.sh - the transactional outbox on PostgreSQL (TAP): a
# throwaway cluster (pg.sh), the dev broker, and publishers of
# libshared/infra/outbox.c (driven by outbox_pg_check) sharing one table.
#
# Proves: rows added by outbox_add_q in committed transactions all reach
# the topic with keys and values intact, a rolled-back transaction's rows
# never do; a row whose transaction commits after a later-numbered one is
# delivered too (no id high-water mark); three publishers on one table
# deliver every row once while all live, and share the work; a publisher
# killed with -9 mid-drain loses nothing (the others deliver its rows
# within seconds; duplicates no more than the rows it held); a PostgreSQL
# restart is survived with one log line each way; a stop leaves the
# outbox and the heartbeat table empty.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"
C=${OUTBOX_PG_CHECK:-$BUILD_DIR/tests/outbox_pg_check}
for bin in "$BROKER_BIN" "$C"; do
  [ -x "$bin" ] || { echo "Bail out! $bin is missing (build first)"; exit 1; }
done
command -v kcat >/dev/null || { echo "Bail out! kcat is not installed"; exit 1; }
T=email-events
D=$TMP/obx
mkdir -p "$D"

start_pg "$TMP/pg" outbox; ok $? "a throwaway PostgreSQL cluster starts (port $PG_PORT)" || { finish; exit 1; }
start_broker "$D/broker"; ok $? "the dev broker starts" || { finish; exit 1; }
"$C" schema "$PG_URL" 2>"$D/schema.log"
ok $? "OUTBOX_PG_SCHEMA_SQL creates the tables by sqldb_migrate"
eq "... outbox and outbox_publishers" "$(pg_sql outbox "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE tablename LIKE 'outbox%'")" "outbox,outbox_publishers"

# kread RUN - the topic's messages of one run, as KEY<TAB>VALUE
kread() { kcat -b "$BROKERS" -C -t "$T" -e -q -f '%k\t%s\n' 2>/dev/null | grep -F "\"run\":\"$1\""; }
count() { "$C" count "$PG_URL" 2>/dev/null; }
empty() { [ "$(count)" = 0 ]; }
# pub NAME - a publisher in the background: NAME_PID, output in $D/NAME.{out,log}
pub() { local n=$1; shift
  "$C" publish "$PG_URL" "$BROKERS" "$@" >"$D/$n.out" 2>"$D/$n.log" &
  eval "${n}_PID=$!"; track $!; }
stat_of() { grep '^stats ' "$D/$1.out" | tail -1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# --- one publisher: committed rows arrive, rolled-back ones never -------------
"$C" add "$PG_URL" $T 300 one --tx 30 >"$D/one.rows" 2>"$D/one.add.log"
ok $? "300 rows added by outbox_add_q in 10 committed transactions"
"$C" add "$PG_URL" $T 40 rolled --tx 20 --rollback >"$D/rolled.rows" 2>"$D/rolled.add.log"
ok $? "40 more added in 2 transactions that are rolled back"
eq "the outbox holds the committed rows only" "$(count)" 300
"$C" publish "$PG_URL" "$BROKERS" --until-empty --timeout 60 >"$D/single.out" 2>"$D/single.log"
ok $? "a publisher on the postgres:// URL drains the table"
check "its log shows the URL without a password and its owner name" -- \
  grep -q "outbox: publisher started db=postgres://postgres@127.0.0.1:$PG_PORT/outbox owner=outbox_pg_check/" "$D/single.log"
kread one | sort >"$D/one.kcat"
check "every committed row reached the topic, keys and values intact" -- cmp "$D/one.kcat" <(sort "$D/one.rows")
eq "... each once" "$(wc -l <"$D/one.kcat")" 300
eq "no row of the rolled-back transactions reached the topic" "$(kread rolled | wc -l)" 0
eq "the stopped publisher left no heartbeat and no lease" \
  "$(pg_sql outbox "SELECT (SELECT count(*) FROM outbox_publishers) + (SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL)")" 0

# --- ids committed out of order -------------------------------------------------
pub solo
wait_for 10 grep -q '^stats .*kafka_up=1' "$D/solo.out"; ok $? "a running publisher sees Kafka up"
"$C" add "$PG_URL" $T 1 early --hold-ms 2000 >"$D/early.rows" 2>"$D/early.log" &
EARLY=$!
wait_for 5 bash -c "[ \"\$(pg_sql outbox \"SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'\" 2>/dev/null)\" = 1 ]"
"$C" add "$PG_URL" $T 50 late >"$D/late.rows" 2>"$D/late.log"
wait_for 10 bash -c "[ \"\$(kcat -b '$BROKERS' -C -t $T -e -q -f '%s\n' 2>/dev/null | grep -c '\"run\":\"late\"')\" = 50 ]"
ok $? "rows with higher ids committed first are delivered"
wait $EARLY
ok $? "then the transaction holding the lowest id commits"
wait_for 10 empty; ok $? "... and its row is delivered too (the PostgreSQL drain keeps no id high-water mark)"
cmp -s <(kread early) "$D/early.rows"; ok $? "... intact"
stop_pid "$solo_PID"; eq "the publisher exits 0 on SIGTERM" "$?" 0

# --- three publishers on one table --------------------------------------------------
for n in p1 p2 p3; do pub $n; done
for n in p1 p2 p3; do wait_for 10 grep -q '^stats .*kafka_up=1' "$D/$n.out" || break; done
ok $? "three publishers run on one table"
eq "three heartbeats" "$(pg_sql outbox 'SELECT count(*) FROM outbox_publishers')" 3
"$C" add "$PG_URL" $T 6000 three --tx 50 --sleep-ms 2 >"$D/three.rows" 2>"$D/three.add.log"
ok $? "6000 rows added in 120 transactions while they run"
s=$(date +%s%N)
wait_for 60 empty; ok $? "the table drains ($(( ($(date +%s%N) - s) / 1000000 )) ms after the last commit)"
kread three | sort >"$D/three.kcat"
check "every row reached the topic intact" -- cmp <(sort -u "$D/three.kcat") <(sort "$D/three.rows")
eq "none was produced twice while all publishers live" "$(wc -l <"$D/three.kcat")" 6000
sleep 0.5
pubs=$(for n in p1 p2 p3; do stat_of $n published; done | tr '\n' ' ')
echo "# published by each: $pubs"
eq "the three publishers' published counts add up to 6000" "$(echo $pubs | awk '{print $1 + $2 + $3}')" 6000
# which publisher polls when rows arrive is timing: on a quick machine one
# of three may find every row taken already (a fresh-clone run: 0 1452 4548)
check "the work was shared: at least two publishers took rows" -- bash -c "n=0; for x in $pubs; do [ \$x -gt 0 ] && n=\$((n + 1)); done; [ \$n -ge 2 ]"

# --- one publisher killed with -9 mid-drain ------------------------------------------
# the victim: a publisher holding rows, frozen (SIGSTOP: a hung instance) so
# what it holds can be counted, then killed with -9
"$C" add "$PG_URL" $T 20000 kill --tx 100 --sleep-ms 10 >"$D/kill.rows" 2>"$D/kill.add.log" &
ADD=$!
wait_for 20 bash -c "[ \$(kcat -b '$BROKERS' -C -t $T -e -q -f '%s\n' 2>/dev/null | grep -c '\"run\":\"kill\"') -ge 3000 ]"
ok $? "the drain of 20,000 rows is under way"
victim= held=0
for try in $(seq 20); do
  v=$(pg_sql outbox "SELECT split_part(lease_owner, '/', 3) FROM outbox WHERE lease_owner IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
  [ -n "$v" ] || { sleep 0.05; continue; }
  kill -STOP "$v"
  held=$(pg_sql outbox "SELECT count(*) FROM outbox WHERE split_part(lease_owner, '/', 3) = '$v'")
  [ "$held" -gt 0 ] && { victim=$v; break; }
  kill -CONT "$v"
done
check "a publisher holding rows is frozen mid-drain ($held rows)" -- test -n "$victim"
[ -n "$victim" ] && kill -KILL "$victim"; wait "$victim" 2>/dev/null; killed=$(date +%s%N)
survivors=$(for n in p1 p2 p3; do [ "$(eval echo \$${n}_PID)" = "$victim" ] || echo $n; done | tr '\n' ' ')
echo "# killed pid $victim holding $held rows; survivors: $survivors"
wait "$ADD"; ok $? "the writer commits all 20,000 rows"
wait_for 60 empty
ok $? "the survivors drain the table, the killed one's rows included ($(( ($(date +%s%N) - killed) / 1000000 )) ms after the kill)"
check "its rows were released by a survivor's reaper" -- \
  grep -hq "outbox: publisher outbox_pg_check/.*/$victim/.* stopped its heartbeat; its $held rows released" \
    $(for n in $survivors; do echo "$D/$n.log"; done)
kread kill | sort >"$D/kill.kcat"
check "no row lost: all 20,000 reached the topic intact" -- cmp <(sort -u "$D/kill.kcat") <(sort "$D/kill.rows")
dups=$(( $(wc -l <"$D/kill.kcat") - 20000 ))
echo "# duplicates: $dups (the killed publisher held $held)"
check "duplicates ($dups) no more than the rows the killed publisher held ($held)" -- test "$dups" -le "$held"
eq "the dead publisher's heartbeat is gone" "$(pg_sql outbox "SELECT count(*) FROM outbox_publishers WHERE split_part(owner, '/', 3) = '$victim'")" 0

# --- PostgreSQL restarts under the survivors ------------------------------------------
restart_pg; ok $? "PostgreSQL restarts (fast shutdown: every session cut)"
"$C" add "$PG_URL" $T 500 after --tx 50 >"$D/after.rows" 2>"$D/after.add.log"
ok $? "500 rows added after the restart"
wait_for 30 empty; ok $? "the survivors reconnect and drain them"
check "all 500 reached the topic intact" -- cmp <(kread after | sort -u) <(sort "$D/after.rows")
for n in $survivors; do
  lost=$(grep -c 'connection lost' "$D/$n.log"); back=$(grep -c 'connection back' "$D/$n.log")
  check "$n logs the loss at most once, and the return once if it logged the loss ($lost/$back)" -- \
    test "$lost" -le 1 -a "$back" = "$lost"
  check "$n reconnected: its heartbeat is fresh" -- test \
    "$(pg_sql outbox "SELECT count(*) FROM outbox_publishers WHERE owner LIKE '%/$(eval echo \$${n}_PID)/%' AND seen_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 3000")" = 1
done

# --- stop -------------------------------------------------------------------------
for n in $survivors; do stop_pid "$(eval echo \$${n}_PID)"; eq "$n exits 0 on SIGTERM" "$?" 0; done
eq "the outbox is empty" "$(count)" 0
eq "the heartbeat table is empty" "$(pg_sql outbox 'SELECT count(*) FROM outbox_publishers')" 0
check "no sanitizer report" -- bash -c "! grep -lE 'Sanitizer|runtime error:' '$D'/*.log"
stop_pid "$BROKER_PID"
stop_pg; ok $? "PostgreSQL stops"
finish
