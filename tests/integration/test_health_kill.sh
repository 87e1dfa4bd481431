#!/bin/bash
# test_health_kill.sh - the health service's event ingest loses nothing and
# counts nothing twice when it is killed with SIGKILL in the middle of its
# batches, again and again. A backlog of email.sent events (with bounces,
# redelivered duplicates and user registrations) is ingested once without a
# kill (the control), then with DB_FILES=1 and DB_FILES=4 under repeated
# kill -9 and restarts on the same store and consumer group: the per-email
# and per-domain counters must equal the control's, which must equal what
# the generator computed. KILL_SEED=n replays the kill timings of a run.
. "$(dirname "$0")/lib.sh"

N=${KILL_N:-160000} # email.sent events (unique copies; KILL_N=250000 for a longer run)
KILLS=4
# a run is killed a random 0.3-2 s after its first commit, or sooner once it
# has added BUDGET copies; a commit is a batch of up to 40,000 events, so a
# fast build commits one batch a run: with N over three batches, however
# fast this build ingests, the first three kills land mid-ingest
BUDGET=$((N / 16))
# librdkafka's mock cluster keeps only the last ~5 MB of a partition: enough
# partitions that the whole backlog stays (checked below)
PARTS=$(((N + 9999) / 10000 < 3 ? 3 : (N + 9999) / 10000))
SEED=${KILL_SEED:-$(($$ % 32768))}
RANDOM=$SEED
echo "# N=$N partitions=$PARTS KILL_SEED=$SEED"

metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }
tracked() { local v; v=$(metric "$H" health_tracked_copies); echo "${v%%.*}"; }
tracked_is() { [ "$(tracked)" = "$1" ]; }
# progressed FROM - the store tracks more copies than FROM, or all of them
progressed() { local c; c=$(tracked); [ -n "$c" ] && { [ "$c" -gt "$1" ] || [ "$c" = "$N" ]; }; }
# kill_point FROM MS - return after MS ms, or sooner once the store tracks BUDGET
# copies more than FROM (then CUT + 1)
kill_point() {
  local end=$(($(date +%s%3N) + $2)) c
  while [ "$(date +%s%3N)" -lt "$end" ]; do
    c=$(tracked)
    [ -n "$c" ] && [ "$c" -ge $(($1 + BUDGET)) ] && { CUT=$((CUT + 1)); return; }
    sleep 0.05
  done
}
# counters NAME - save NAME's /all_mail_stats and /domains in $TMP/NAME.*.json
counters() {
  curl -s "$H/all_mail_stats?limit=1000&offset=0" >"$TMP/$1.stats.json"
  curl -s "$H/domains" >"$TMP/$1.domains.json"
}
# summary NAME - {"emails": {id: [tracked, bounced]}, "domains": {domain: [tracked,
# bounced, users]}} from NAME's saved answers, sorted
summary() {
  $PY - "$TMP/$1.stats.json" "$TMP/$1.domains.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); d = json.load(open(sys.argv[2]))
print(json.dumps({"emails": {k: [v["tracked"], v["bounced"]] for k, v in s.items()},
                  "domains": {x["domain"]: [x["tracked"], x["bounced"], x["users"]] for x in d}},
                 sort_keys=True))
PY
}
# same NAME GOT WANT - eq for two summaries; names the entries that differ
same() {
  [ "$2" = "$3" ] && { ok 0 "$1"; return; }
  ok 1 "$1"
  $PY - "$2" "$3" <<'PY'
import json, sys
g, w = json.loads(sys.argv[1] or "{}"), json.loads(sys.argv[2])
d = [(s, k, g.get(s, {}).get(k), w[s].get(k)) for s in w for k in sorted(set(w[s]) | set(g.get(s, {})))
     if g.get(s, {}).get(k) != w[s].get(k)]
for s, k, a, b in d[:8]:
    print("#   %s %s: got %s, want %s" % (s, k, a, b))
print("#   %d entries differ" % len(d))
PY
}
# span TOPIC - "LOW_SUM HIGH_SUM" of TOPIC's partitions' watermarks
span() {
  local lo=() hi=() p
  for ((p = 0; p < PARTS; p++)); do lo+=(-t "$1:$p:-2"); hi+=(-t "$1:$p:-1"); done
  echo "$(kcat -b "$BROKERS" -Q "${lo[@]}" 2>/dev/null | awk '{ s += $4 } END { print s + 0 }')" \
    "$(kcat -b "$BROKERS" -Q "${hi[@]}" 2>/dev/null | awk '{ s += $4 } END { print s + 0 }')"
}

# --- the backlog: generated, produced before any health-service runs
mkdir -p "$TMP/broker"
"$BROKER_BIN" -n 3 -p "$PARTS" -f "$TMP/broker/bootstrap" </dev/null >"$TMP/broker/broker.out" 2>"$TMP/broker/broker.log" &
BROKER_PID=$!; track $BROKER_PID
wait_for 15 test -s "$TMP/broker/bootstrap"; ok $? "kafka-dev-broker starts ($PARTS partitions)" || { finish; exit 1; }
BROKERS=$(head -1 "$TMP/broker/bootstrap")

# ev.copies (email-events), ev.users (emailId-events) as "key<TAB>value" lines;
# ev.want: the counters they must produce. Copy Message-IDs as warmup-service
# makes them (16 hex digits), 20 broadcasts, 30 domains; 2% of the copies
# bounce later; 1% of all events are delivered again later.
$PY - "$TMP/ev" "$N" "$SEED" <<'PY'
import datetime, hashlib, json, random, sys
out, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
EMAILS, DOMAINS, USERS = 20, 30, 300
now = datetime.datetime.now(datetime.timezone.utc)
at = now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000)
dom = ["d%d.kill.test" % d for d in range(DOMAINS)]
ev, emails, domains = [], {}, {}   # ev: (position, user?, key, value)
line = lambda v: json.dumps(v, separators=(",", ":"))
for i in range(n):
    e, d = rnd.randint(1, EMAILS), dom[rnd.randrange(DOMAINS)]
    mid = "<email-%d.%s@sender.kill.test>" % (e, hashlib.sha256(b"%d:%d" % (seed, i)).hexdigest()[:16])
    v = {"v": 1, "type": "email.sent", "message_id": mid, "broadcast_id": "<email-%d@sender.kill.test>" % e,
         "email_id": e, "recipient": "r%d@%s" % (i, d), "domain": d, "smtp_client": "custom", "sent_at": at}
    ev.append((i, False, mid, line(v)))
    emails.setdefault(str(e), [0, 0])[0] += 1
    domains.setdefault(d, [0, 0, 0])[0] += 1
    if rnd.random() < 0.02:
        f = dict(v, type="email.failed", smtp_reply="550 5.1.1 no such user")
        ev.append((i + rnd.uniform(1, n / 4), False, mid, line(f)))
        emails[str(e)][1] += 1
        domains[d][1] += 1
for j in range(USERS):
    d = dom[rnd.randrange(DOMAINS)]
    v = {"v": 1, "type": "user.registered", "email_id": "u%d@%s" % (j, d), "name": "U%d" % j, "domain": d, "at": at}
    ev.append((rnd.uniform(0, n), True, d, line(v)))
    domains[d][2] += 1
ev += [(p + rnd.uniform(1, n / 2), u, k, v) for p, u, k, v in ev if rnd.random() < 0.01]
ev.sort(key=lambda x: x[0])
with open(out + ".copies", "w") as fc, open(out + ".users", "w") as fu:
    for p, u, k, v in ev:
        (fu if u else fc).write(k + "\t" + v + "\n")
with open(out + ".want", "w") as f:
    print(json.dumps({"emails": emails, "domains": domains}, sort_keys=True), file=f)
PY
ok $? "$N email.sent events generated"
NC=$(wc -l <"$TMP/ev.copies"); NU=$(wc -l <"$TMP/ev.users")
echo "# $NC email events (sent, failed, redelivered), $NU user events"
kcat -b "$BROKERS" -P -t email-events -K $'\t' -X linger.ms=20 -X batch.num.messages=10000 \
  -X queue.buffering.max.messages=1000000 <"$TMP/ev.copies" &&
  kcat -b "$BROKERS" -P -t emailId-events -K $'\t' <"$TMP/ev.users"
ok $? "the backlog is produced"
eq "the broker holds every email event" "$(span email-events)" "0 $NC"
eq "the broker holds every user event" "$(span emailId-events)" "0 $NU"

HP=$(freeport); H=http://127.0.0.1:$HP
COMMON=(CHECK_INTERVAL=86400 LOG_LEVEL=info)

# --- control: one run, no kill
t0=$SECONDS
start_health control "$HP" KAFKA_GROUP_ID=control DB_FILES=1 "${COMMON[@]}"; ok $? "control: health-service starts"
wait_for 150 tracked_is "$N"; ok $? "control: all $N copies tracked" || echo "#   got $(tracked)"
echo "# control: ingest in $((SECONDS - t0)) s"
counters control
stop_named control; eq "control: health-service exits 0" "$STOP_RC" 0
check "control: no sanitizer report" -- sanitizer_clean control
same "control: tracked and bounced per email, tracked, bounced and users per domain as generated" \
  "$(summary control)" "$(cat "$TMP/ev.want")"

# --- DB_FILES 1 and 4: killed KILLS times mid-ingest, then left to finish
explicit=0
"$HEALTH_BIN" --help 2>/dev/null | grep -q '^ *DB_FILES ' && explicit=1
SUMMARY=""
for files in 1 4; do
  name=kill$files; db="$TMP/$name/health.db"; t0=$SECONDS; mid=0; up=1; CUT=0
  for ((k = 1; k <= KILLS; k++)); do
    start_health "$name" "$HP" KAFKA_GROUP_ID="$name" DB_FILES="$files" "${COMMON[@]}" || { up=0; break; }
    c0=$(tracked)
    wait_for 120 progressed "${c0:-0}" || echo "# DB_FILES=$files kill $k: no progress from $c0"
    kill_point "${c0:-0}" $((300 + RANDOM % 1701))
    c=$(tracked)
    pid_var=${name}_PID; pid=${!pid_var}
    kill -KILL "$pid"; wait "$pid" 2>/dev/null
    [ -n "$c" ] && [ "$c" -gt 0 ] && [ "$c" -lt "$N" ] && mid=$((mid + 1))
    echo "# DB_FILES=$files kill $k: $c of $N copies tracked just before the kill"
  done
  ok $((1 - up)) "DB_FILES=$files: health-service restarts after each kill -9"
  start_health "$name" "$HP" KAFKA_GROUP_ID="$name" DB_FILES="$files" "${COMMON[@]}"; ok $? "DB_FILES=$files: health-service starts again"
  wait_for 150 tracked_is "$N"; ok $? "DB_FILES=$files: health_tracked_copies reaches $N" || echo "#   got $(tracked)"
  ok $((mid < 3)) "DB_FILES=$files: at least 3 of the $KILLS kills landed mid-ingest ($mid)"
  counters "$name"
  same "DB_FILES=$files: tracked, bounced per email and per domain, users per domain as the control's" \
    "$(summary "$name")" "$(summary control)"
  sleep 1.5 # more than a consumer round trip: nothing left to count twice
  eq "DB_FILES=$files: health_tracked_copies stays $N" "$(tracked)" "$N"
  if [ "$files" = 4 ]; then
    check "DB_FILES=4: the store is four files" -- test -s "$db" -a -s "$db.shard1" -a -s "$db.shard2" -a -s "$db.shard3"
  elif [ "$explicit" = 1 ]; then
    check "DB_FILES=1: the store is one file" -- test -s "$db" -a ! -e "$db.shard1"
  fi
  stop_named "$name"; eq "DB_FILES=$files: health-service exits 0" "$STOP_RC" 0
  check "DB_FILES=$files: no sanitizer report" -- sanitizer_clean "$name"
  SUMMARY="$SUMMARY# DB_FILES=$files: $KILLS kills, $mid mid-ingest ($CUT cut short), $((SECONDS - t0)) s"$'\n'
done
printf '%s' "$SUMMARY"
stop_pid "$BROKER_PID"
finish
