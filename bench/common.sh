# bench/common.sh - helpers sourced by every bench/*.sh script.
# shellcheck shell=bash
#
# Every script starts its own servers (kafka-dev-broker, Postfix smtp-sink,
# warmup-service, health-service) on free 127.0.0.1 ports in a temporary
# directory, waits for them with a time limit, and stops them by PID on exit,
# failure and Ctrl-C included. Figures go to stdout; progress notes ("# ...")
# to stderr. Benchmarks print figures, they never pass or fail on time; a
# script exits non-zero only when the run itself is broken (a tool is
# missing, a server does not start, a count does not match).
#
# Environment common to all scripts:
#   BUILD_DIR   meson build directory with the binaries (default: <repo>/build;
#               create it with `meson setup build --buildtype=release`)
#   KEEP_TMP=1  keep the temporary directory (logs, databases) at the end
#   BENCH_LOG_LEVEL  LOG_LEVEL of the services (default: warn)
#   PERF=1      profile the service during the measured phase with `perf record`
#               (cpu-clock, call graphs) and print where its CPU went
#   BENCH_DB=sqlite  or postgres: warmup-service's state on a throwaway
#               PostgreSQL cluster (fsync=off, as the SQLite runs' tmpfs-less
#               files sync), one database per service name (send.sh,
#               cluster.sh, send_latency.sh)
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
: "${BUILD_DIR:=$ROOT/build}"
BROKER_BIN="$BUILD_DIR/deploy/dev-broker/kafka-dev-broker"
WARMUP_BIN="$BUILD_DIR/warmup-service/warmup-service"
HEALTH_BIN="$BUILD_DIR/health-service/health-service"
: "${BENCH_LOG_LEVEL:=warn}"
: "${BENCH_DB:=sqlite}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
BENCH_PIDS=""
BENCH_FAILED=0

note() { echo "# $*" >&2; }
die() {
  echo "bench: error: $*" >&2
  BENCH_FAILED=1
  exit 1
}

# need TOOL... - fail with a clear message when a tool is missing
need() {
  local t hint
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 && continue
    case $t in
      smtp-sink | smtp-source) hint="apt-get install postfix (both live in /usr/sbin)" ;;
      wrk) hint="apt-get install wrk" ;;
      kcat) hint="apt-get install kcat" ;;
      curl | jq) hint="apt-get install $t" ;;
      *) hint="install it" ;;
    esac
    die "'$t' not found on PATH: $hint"
  done
}
# need_bins [broker] [warmup] [health] - the built binaries
need_bins() {
  local b f
  for b in "$@"; do
    case $b in
      broker) f=$BROKER_BIN ;;
      warmup) f=$WARMUP_BIN ;;
      health) f=$HEALTH_BIN ;;
    esac
    [ -x "$f" ] || die "$f missing: build first (cd $ROOT && meson setup build --buildtype=release && ninja -C build), or set BUILD_DIR"
  done
}
export PATH="$PATH:/usr/sbin:/sbin"
need curl jq "$PY"

BTMP=$(mktemp -d /tmp/bench.XXXXXX)
chmod 755 "$BTMP"

alive() {
  local s
  s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$s" != Z ]
}
track() { BENCH_PIDS="$BENCH_PIDS $1"; }
untrack() { BENCH_PIDS=$(echo " $BENCH_PIDS " | sed "s/ $1 / /g"); }
# stop_pid PID [TIMEOUT_S] - SIGTERM, then SIGKILL after the timeout; returns the exit status
stop_pid() {
  local p=$1 t=${2:-20} i
  untrack "$p"
  kill -TERM "$p" 2>/dev/null || return 0
  for ((i = 0; i < t * 20; i++)); do
    alive "$p" || break
    sleep 0.05
  done
  if alive "$p"; then
    note "pid $p ignored SIGTERM for ${t}s, SIGKILL"
    kill -KILL "$p" 2>/dev/null
  fi
  wait "$p" 2>/dev/null
}
bench_cleanup() {
  local rc=$? p i
  trap - EXIT INT TERM
  for p in $BENCH_PIDS; do alive "$p" && kill -TERM "$p" 2>/dev/null; done
  for ((i = 0; i < 60; i++)); do
    local any=0
    for p in $BENCH_PIDS; do alive "$p" && any=1; done
    [ "$any" = 0 ] && break
    sleep 0.05
  done
  for p in $BENCH_PIDS; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
  [ "$rc" != 0 ] && BENCH_FAILED=1
  if [ -z "$(ls -A "$BTMP" 2>/dev/null)" ]; then
    rm -rf "$BTMP" # failed before anything was written
  elif [ "${KEEP_TMP:-0}" = 1 ] || [ "$BENCH_FAILED" != 0 ]; then
    note "kept $BTMP (logs and data)"
  else
    rm -rf "$BTMP"
  fi
  exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

freeport() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for SECONDS CMD... - poll CMD every 50 ms until it succeeds
wait_for() {
  local t=$1 i
  shift
  for ((i = 0; i < t * 20; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}
now_ms() { local t=$EPOCHREALTIME; echo $((${t/./} / 1000)); }
# fmt_rate COUNT MS - COUNT per second, no decimals
fmt_rate() { awk -v n="$1" -v ms="$2" 'BEGIN { if (ms <= 0) print "inf"; else printf "%.0f", n * 1000 / ms }'; }
fmt_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "n/a"; else printf "%.2f", a / b }'; }
fmt_s() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }

# machine_line - one line describing this machine
machine_line() {
  local cpu mem
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  echo "machine: $(nproc) CPUs ($cpu), $mem RAM, $(uname -r); build: $BUILD_DIR ($(buildtype)); load average $(cut -d' ' -f1-3 /proc/loadavg); $(dsync_ms)"
}
# dsync_ms - the latency of one synchronous 4 KiB write in $BTMP (what one SQLite commit waits for)
dsync_ms() {
  local t0 t1
  t0=$(now_ms)
  dd if=/dev/zero of="$BTMP/dsync.probe" bs=4k count=200 oflag=dsync 2>/dev/null || { echo "dsync write: n/a"; return; }
  t1=$(now_ms)
  rm -f "$BTMP/dsync.probe"
  awk -v ms=$((t1 - t0)) 'BEGIN { printf "4 KiB O_DSYNC write %.2f ms", ms / 200 }'
}
buildtype() {
  jq -r '.[] | select(.name == "buildtype") | .value' "$BUILD_DIR/meson-info/intro-buildoptions.json" 2>/dev/null || echo unknown
}

# --- servers ---------------------------------------------------------------

# start_broker [PARTITIONS] - kafka-dev-broker (3 brokers, 3 partitions per topic unless
# given); sets BROKERS, BROKER_PID.
# Note: librdkafka's mock cluster keeps only the last ~5 MB of each partition
# (older message sets are dropped), so a backlog of more than ~15,000 events
# per partition that nobody has consumed yet is silently truncated.
start_broker() {
  local dir=$BTMP/broker
  mkdir -p "$dir"
  rm -f "$dir/bootstrap"
  "$BROKER_BIN" -n 3 -p "${1:-3}" -f "$dir/bootstrap" </dev/null >"$dir/broker.out" 2>"$dir/broker.log" &
  BROKER_PID=$!
  track $BROKER_PID
  wait_for 15 test -s "$dir/bootstrap" || {
    tail -5 "$dir/broker.log" >&2
    die "kafka-dev-broker did not start within 15 s"
  }
  BROKERS=$(head -1 "$dir/bootstrap")
}

# start_sink NAME PORT - Postfix smtp-sink with running counters (-c) in $BTMP/NAME.count;
# sets SINK_PID
start_sink() {
  local name=$1 port=$2 u=()
  [ "$(id -u)" = 0 ] && u=(-u nobody)
  smtp-sink "${u[@]}" -c "127.0.0.1:$port" 4096 >"$BTMP/$name.count" 2>"$BTMP/$name.err" </dev/null &
  SINK_PID=$!
  track $SINK_PID
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || {
    cat "$BTMP/$name.err" >&2
    die "smtp-sink did not listen on $port within 10 s"
  }
}
# sink_count NAME - messages received so far by the sink NAME (its last "mesg=" counter)
sink_count() {
  local v
  v=$(tail -c 300 "$BTMP/$1.count" 2>/dev/null | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
  echo "${v:-0}"
}
# sink_settle NAME WANT [SECONDS] - wait until the sink counted WANT messages; prints the count
sink_settle() {
  local i c
  for ((i = 0; i < ${3:-10} * 10; i++)); do
    c=$(sink_count "$1")
    [ "$c" -ge "$2" ] && break
    sleep 0.1
  done
  sink_count "$1"
}

# start_svc BIN DB READY_PATH WHAT NAME PORT [VAR=VALUE...] - a service with its DB
# in $BTMP/NAME/DB; sets NAME_PID; waits for READY_PATH to answer 2xx
start_svc() {
  local bin=$1 db=$2 ready=$3 what=$4 name=$5 port=$6 pid
  shift 6
  mkdir -p "$BTMP/$name"
  env PORT="$port" KAFKA_BROKERS="${BROKERS:-127.0.0.1:1}" DB_PATH="$BTMP/$name/$db" \
    LOG_LEVEL="$BENCH_LOG_LEVEL" "$@" "$bin" >>"$BTMP/$name/out.log" 2>&1 </dev/null &
  pid=$!
  eval "${name}_PID=$pid"
  track $pid
  wait_for 30 curl -fsS "http://127.0.0.1:$port$ready" || {
    tail -20 "$BTMP/$name/out.log" >&2
    die "$what '$name' not ready within 30 s (log above)"
  }
}
# bench_pg_db NAME - (BENCH_DB=postgres) BENCH_PG_URL: database NAME on the
# run's PostgreSQL cluster, both made at first use
bench_pg_db() {
  if [ -z "${PG_DIR-}" ]; then
    . "$ROOT/tests/integration/pg.sh"
    start_pg "$BTMP/pg" postgres_bench >&2 || die "PostgreSQL did not start"
    note "warmup-service on PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') (fsync=off)"
  fi
  [ "$(pg_sql postgres "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ] ||
    pg_sql postgres "CREATE DATABASE \"$1\"" >/dev/null || die "cannot create database $1"
  BENCH_PG_URL=$(pg_url "$1")
}
# start_warmup NAME PORT [VAR=VALUE...] - warmup-service; waits for /readyz.
# BENCH_DB=postgres: on database w_NAME (WARMUP_DB=NAME2: w_NAME2, so
# several instances share one)
start_warmup() {
  local u=
  if [ "$BENCH_DB" = postgres ]; then
    bench_pg_db "w_${WARMUP_DB:-$1}"
    u=$BENCH_PG_URL
  fi
  start_svc "$WARMUP_BIN" warmup.db /readyz warmup-service "$@" ${u:+DATABASE_URL=$u}
}
# start_health NAME PORT [VAR=VALUE...] - health-service; waits for /healthz only
# (readiness may wait for the consumer group)
start_health() { start_svc "$HEALTH_BIN" health.db /healthz health-service "$@"; }
# stop_named NAME - SIGTERM the service started as NAME and wait for it
stop_named() {
  local p
  eval "p=\${${1}_PID:-}"
  [ -n "$p" ] && stop_pid "$p" 60
}

# metric URL NAME - sum of a Prometheus metric over its labels ("" when absent)
metric() {
  curl -s --max-time 10 "$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $2; f = 1 } END { if (f) printf "%.0f\n", s }'
}
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }

# users_csv FILE N [PREFIX] - a CSV of N users for /users/import, spread over 50 domains
users_csv() {
  $PY - "$1" "$2" "${3:-u}" <<'PY'
import sys
path, n, p = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write("name,email_id\n")
    f.writelines(f"User {i},{p}{i}@d{i % 50}.bench.test\n" for i in range(n))
PY
}
# seed_users N - a database of N imported users in $BTMP/seed (a DRYRUN
# warmup-service on a free port, stopped after the import and its events);
# `copy_db seed NAME` gives each measured run its own copy. Sets IMPORT_MS, DRAIN_MS.
seed_users() {
  local port
  port=$(freeport)
  start_warmup seed "$port" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$BTMP/spool-unused"
  import_users "http://127.0.0.1:$port" "$1"
  stop_named seed
}

# import_users URL N - import N users through POST /users/import, then wait until the
# outbox has published their user.registered events; sets IMPORT_MS, DRAIN_MS
import_users() {
  local url=$1 n=$2 t0 t1 r got
  users_csv "$BTMP/users-$n.csv" "$n"
  t0=$(now_ms)
  r=$(curl -s --max-time 1800 -H 'Content-Type: text/csv' --data-binary @"$BTMP/users-$n.csv" "$url/users/import")
  t1=$(now_ms)
  got=$(echo "$r" | jq -r '.imported' 2>/dev/null)
  [ "$got" = "$n" ] || die "import of $n users answered: $(echo "$r" | head -c 300)"
  IMPORT_MS=$((t1 - t0))
  wait_for 600 metric_is "$url" outbox_pending 0 || die "outbox did not drain within 600 s after the import"
  DRAIN_MS=$(($(now_ms) - t0))
}

# body_2k - a 2048-byte text body (short lines, so quoted-printable does not grow it)
body_2k() {
  $PY -c '
line = "Warm-up message for {{name}}: lorem ipsum dolor sit amet, consectetur.\n"
s = (line * 40)[:2048 - 1] + "\n"
import json; print(json.dumps(s))'
}
# send_json [EXTRA_JSON_FIELDS] - the /send body used by the send benchmarks
send_json() {
  local extra=${1:-}
  echo "{\"from\":\"noreply@sender.bench.test\",\"subject\":\"Hello {{name}}\",\"body\":$(body_2k)${extra:+,$extra}}"
}

# watch_send URL PID N OUT [--duration S] [--poll S] [--timeout S] [--body FILE]
# POST /send, then poll GET /emails/{id} (keep-alive) and /proc/PID/status until
# progress sent=N (or for --duration seconds). Writes OUT (key=value lines) and
# OUT.samples ("t_ms sent rss_kb hwm_kb", t relative to the POST).
watch_send() { $PY "$BENCH_DIR/watch_send.py" "$@"; }
# kv FILE KEY - value of KEY in a key=value file
kv() { sed -n "s/^$2=//p" "$1" | tail -1; }
# cpu_ms PID - user+system CPU time of PID (all threads) in ms
cpu_ms() {
  local f
  f=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  f=${f##*) }
  # shellcheck disable=SC2086 # split the stat fields
  set -- $f
  echo $(((${12} + ${13}) * 1000 / $(getconf CLK_TCK)))
}
# thread_cpu PID - "name=CPU_s ..." for PID's threads (summed by thread name), busiest first
thread_cpu() {
  local t f comm
  for t in /proc/"$1"/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) || continue
    f=$(cat "$t/stat" 2>/dev/null) || continue
    f=${f##*) }
    # shellcheck disable=SC2086 # split the stat fields
    set -- $f
    echo "${comm// /_} $((${12} + ${13}))"
  done | awk -v hz="$(getconf CLK_TCK)" '{ s[$1] += $2 } END { for (k in s) printf "%s=%.2f\n", k, s[k] / hz }' |
    sort -t= -k2 -rn | tr '\n' ' '
}
# copy_db FROM TO - copy a stopped service's SQLite files (db, -wal, -shm),
# or its PostgreSQL database (CREATE DATABASE ... TEMPLATE)
copy_db() {
  mkdir -p "$BTMP/$2"
  if [ "$BENCH_DB" = postgres ]; then
    pg_sql postgres "CREATE DATABASE \"w_$2\" TEMPLATE \"w_$1\"" >/dev/null || die "cannot copy database w_$1"
  else
    cp "$BTMP/$1"/warmup.db* "$BTMP/$2/"
  fi
}
# drop_db NAME - a stopped service's state removed (keeps /tmp small on full runs)
drop_db() {
  rm -rf "${BTMP:?}/$1"
  [ "$BENCH_DB" = postgres ] && pg_sql postgres "DROP DATABASE IF EXISTS \"w_$1\"" >/dev/null
  return 0
}

# gen_events FILE N [EMAILS] - N valid email.sent events as "key<TAB>value" lines for
# `kcat -P -K '\t'` (key = the copy's Message-ID, unique per event), spread over
# EMAILS broadcasts (email_id 1..EMAILS) and 50 recipient domains
gen_events() {
  $PY - "$1" "$2" "${3:-100}" <<'PY'
import datetime, hashlib, json, sys
path, n, emails = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = datetime.datetime.now(datetime.timezone.utc)
with open(path, "w") as f:
    for i in range(n):
        e = i % emails + 1
        # sent over the last n/100 ms, in order, as a sender at 100 copies/ms would
        t = now - datetime.timedelta(milliseconds=(n - i) // 100)
        at = t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)
        # as warmup-service makes them: 16 hex digits of SHA-256(salt:copy), so
        # the copies arrive in random Message-ID order (not sorted by i)
        h = hashlib.sha256(b"bench:%d" % i).hexdigest()[:16]
        mid = "<email-%d.%s@sender.bench.test>" % (e, h)
        rcpt = "u%d@d%d.bench.test" % (i, i % 50)
        v = {"v": 1, "type": "email.sent", "message_id": mid,
             "broadcast_id": "<email-%d@sender.bench.test>" % e, "email_id": e,
             "recipient": rcpt, "domain": "d%d.bench.test" % (i % 50), "smtp_client": "custom",
             "sent_at": at}
        f.write(mid + "\t" + json.dumps(v, separators=(",", ":")) + "\n")
PY
}
# topic_span TOPIC PARTITIONS - "LOW_SUM HIGH_SUM": the sum of the low and high
# watermarks of TOPIC's partitions (LOW_SUM > 0: the broker dropped events)
topic_span() {
  local lo=() hi=() p l h
  for ((p = 0; p < $2; p++)); do
    lo+=(-t "$1:$p:-2")
    hi+=(-t "$1:$p:-1")
  done
  l=$(kcat -b "$BROKERS" -Q "${lo[@]}" 2>/dev/null | awk '{ s += $4 } END { print s + 0 }')
  h=$(kcat -b "$BROKERS" -Q "${hi[@]}" 2>/dev/null | awk '{ s += $4 } END { print s + 0 }')
  echo "$l $h"
}
# produce_events FILE - kcat producer (batched) of FILE to email-events on $BROKERS
produce_events() {
  kcat -b "$BROKERS" -P -t email-events -K $'\t' -X linger.ms=20 -X batch.num.messages=10000 \
    -X queue.buffering.max.messages=1000000 -X queue.buffering.max.kbytes=1048576 <"$1"
}

# summary NAME MEASURED TARGET VERDICT - one row of run-all.sh's summary table
# (appended, tab-separated, to $BENCH_SUMMARY when it is set)
summary() {
  [ -n "${BENCH_SUMMARY:-}" ] && printf '%s\t%s\t%s\t%s\n' "$@" >>"$BENCH_SUMMARY"
  return 0
}
# verdict OK_EXPR - "met" or "missed" from an awk condition, e.g. verdict "1.2 >= 1"
verdict() { awk "BEGIN { print ($1) ? \"met\" : \"MISSED\" }"; }

# perf_start PID NAME - when PERF=1, sample PID's CPU (all threads, call graphs) and
# count its system calls until perf_stop
PERF_SYSCALLS=raw_syscalls:sys_enter,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_pwrite64,syscalls:sys_enter_futex,syscalls:sys_enter_poll,syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom
perf_start() {
  PERF_PID=""
  [ "${PERF:-0}" = 1 ] || return 0
  command -v perf >/dev/null 2>&1 || { note "PERF=1 but perf is not installed (apt-get install linux-perf)"; return 0; }
  perf record -e cpu-clock -F 499 -g -p "$1" -o "$BTMP/$2.perf" >"$BTMP/$2.perf.log" 2>&1 &
  PERF_PID=$!
  track "$PERF_PID"
  perf stat -x, -e "$PERF_SYSCALLS" -p "$1" -o "$BTMP/$2.stat" >/dev/null 2>&1 &
  PERF_STAT_PID=$!
  track "$PERF_STAT_PID"
  PERF_NAME=$2
  sleep 0.3
}
# perf_stop [UNITS UNIT_NAME] - stop the recording; keep the busiest libraries, functions
# and the system call counts (per UNIT_NAME when given) for perf_print
perf_stop() {
  [ -n "${PERF_PID:-}" ] || return 0
  local units=${1:-0} uname=${2:-}
  untrack "$PERF_PID"
  untrack "$PERF_STAT_PID"
  kill -INT "$PERF_PID" "$PERF_STAT_PID" 2>/dev/null
  wait "$PERF_PID" "$PERF_STAT_PID" 2>/dev/null
  PERF_PID=""
  {
    echo "--- perf: $PERF_NAME, CPU by library (cpu-clock samples; [kernel.kallsyms] = system calls, network, page faults)"
    perf report -i "$BTMP/$PERF_NAME.perf" --stdio --no-children --sort dso -g none --percent-limit 1 2>/dev/null |
      grep -v '^#' | grep -v '^$' | head -12
    echo "--- perf: $PERF_NAME, user-space functions (self, >= 0.8 %)"
    perf report -i "$BTMP/$PERF_NAME.perf" --stdio --no-children --sort dso,sym -g none --percent-limit 0.8 2>/dev/null |
      grep -v '^#' | grep -v '^$' | grep -v '\[k\]' | head -25
    echo "--- perf: $PERF_NAME, system calls${uname:+ (per $uname: $units)}"
    awk -F, -v u="$units" '$1 ~ /^[0-9]+$/ { n = $3; sub(/.*sys_enter_?/, "", n); if (n == "") n = "all";
      if (u > 0) printf "  %-12s %12d  %8.2f\n", n, $1, $1 / u; else printf "  %-12s %12d\n", n, $1 }' "$BTMP/$PERF_NAME.stat"
  } >>"$BTMP/perf.txt"
}
# perf_print - the profiles collected by perf_stop, if any
perf_print() { [ -s "$BTMP/perf.txt" ] && cat "$BTMP/perf.txt"; return 0; }
