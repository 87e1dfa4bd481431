# lib.sh - helpers for the integration tests (source it). TAP output.
# Servers are started on 127.0.0.1 with free ports, waited for, and stopped
# by PID. Every test script: . lib.sh; ...; finish
set -u
: "${BUILD_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build-test}"
: "${SRC_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
BROKER_BIN="$BUILD_DIR/deploy/dev-broker/kafka-dev-broker"
WARMUP_BIN="$BUILD_DIR/warmup-service/warmup-service"
HEALTH_BIN="$BUILD_DIR/health-service/health-service"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"

# Debian's python3 (the one with python3-aiosmtpd; starts faster than a pyenv shim)
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
T_N=0; T_FAIL=0; PIDS=""
TMP=$(mktemp -d /tmp/it.XXXXXX)
chmod 755 "$TMP"

freeport() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
alive() { local s; s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$s" != Z ]; }
# stop_pid PID [TIMEOUT_S] - SIGTERM, wait, SIGKILL after the timeout; returns the exit status when known
stop_pid() {
  local p=$1 t=${2:-10} i
  kill -TERM "$p" 2>/dev/null || return 0
  for ((i = 0; i < t * 40; i++)); do alive "$p" || break; sleep 0.025; done
  if alive "$p"; then echo "# pid $p ignored SIGTERM for ${t}s, SIGKILL" >&2; kill -KILL "$p"; fi
  wait "$p" 2>/dev/null
}
track() { PIDS="$PIDS $1"; }
cleanup() {
  local p
  for p in $PIDS; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
  if [ "${KEEP_TMP:-0}" = 1 ] || [ "$T_FAIL" != 0 ]; then echo "# kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# ok COND_STATUS NAME - record a result
ok() { local st=$1; shift; T_N=$((T_N + 1))
  if [ "$st" = 0 ]; then echo "ok $T_N - $*"; else echo "not ok $T_N - $*"; T_FAIL=$((T_FAIL + 1)); fi
  return "$st"; }
# check NAME -- CMD... - run CMD, pass when it exits 0
check() { local name=$1; shift; [ "$1" = "--" ] && shift; "$@" >/dev/null 2>&1; ok $? "$name"; }
# eq NAME GOT WANT
eq() { if [ "$2" = "$3" ]; then ok 0 "$1"; else ok 1 "$1"; echo "#   got '$2', want '$3'"; fi; }
finish() { echo "1..$T_N"; [ "$T_FAIL" = 0 ]; }

# wait_for SECONDS CMD... - poll CMD every 50 ms until it succeeds
wait_for() { local t=$1 i; shift
  for ((i = 0; i < t * 20; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }

# start_broker DIR - kafka-dev-broker with the two topics; sets BROKERS, BROKER_PID
start_broker() {
  local dir=$1; mkdir -p "$dir"; rm -f "$dir/bootstrap"
  "$BROKER_BIN" -n 3 -p 3 -f "$dir/bootstrap" </dev/null >"$dir/broker.out" 2>"$dir/broker.log" &
  BROKER_PID=$!; track $BROKER_PID
  wait_for 10 test -s "$dir/bootstrap" || { echo "# broker did not start"; sed "s/^/#   /" "$dir/broker.log"; return 1; }
  BROKERS=$(head -1 "$dir/bootstrap")
}

# http METHOD URL [BODY] [extra curl args] - prints "STATUS BODY" (body on one line)
http() { local m=$1 u=$2 b=${3-}; shift 3 2>/dev/null || shift $#
  if [ -n "$b" ]; then
    local ct=(-H 'Content-Type: application/json')
    case "$*" in *Content-Type*) ct=() ;; esac
    curl -s -o "$TMP/.body" -w '%{http_code}' -X "$m" "${ct[@]}" --data-binary "$b" "$@" "$u"
  else
    curl -s -o "$TMP/.body" -w '%{http_code}' -X "$m" "$@" "$u"
  fi
  printf ' '; tr -d '\n' < "$TMP/.body"; echo
}
# jget JSON EXPR - evaluate a python expression on the parsed JSON `j`
jget() { printf '%s' "$1" | $PY -c 'import json,sys; j=json.load(sys.stdin); r=eval(sys.argv[1]); print(json.dumps(r) if isinstance(r,(dict,list)) else r)' "$2"; }

# start_svc BIN DB NAME PORT [VAR=VALUE...] - a service with its DB in $TMP/NAME/DB;
# sets NAME_PID; waits for /healthz
start_svc() { local bin=$1 db=$2 name=$3 port=$4; shift 4
  mkdir -p "$TMP/$name"
  env PORT="$port" KAFKA_BROKERS="${BROKERS:-127.0.0.1:1}" DB_PATH="$TMP/$name/$db" LOG_LEVEL=debug "$@" \
    "$bin" >>"$TMP/$name/out.log" 2>&1 </dev/null &
  eval "${name}_PID=$!"; track $!
  wait_for 20 curl -fsS "http://127.0.0.1:$port/healthz" || { echo "# $name did not start"; tail -20 "$TMP/$name/out.log" | sed 's/^/#   /'; return 1; }
}
# start_warmup / start_health NAME PORT [VAR=VALUE...]; each service on
# PostgreSQL when WARMUP_DATABASE_URL / HEALTH_DATABASE_URL is set
# (tests/integration/pg.sh; use_test_db)
start_warmup() { local u=${WARMUP_DATABASE_URL-}
  if [ -z "$u" ] && [ "${TEST_DB:-sqlite}" = postgres ]; then test_pg_db "w_$1" || return 1; u=$TEST_PG_URL; fi
  start_svc "$WARMUP_BIN" warmup.db "$@" ${u:+DATABASE_URL=$u}; }
start_health() { start_svc "$HEALTH_BIN" health.db "$@" ${HEALTH_DATABASE_URL:+DATABASE_URL=$HEALTH_DATABASE_URL}; }
# test_pg_db NAME - with TEST_DB=postgres (the *_pg.sh variants of a
# test): TEST_PG_URL, the URL of database NAME on this test's throwaway
# PostgreSQL cluster, both made at first use; start_warmup uses one per
# NAME, as DB_PATH is one file per NAME
test_pg_db() {
  if [ -z "${PG_DIR-}" ]; then
    . "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
    start_pg "$TMP/pg" postgres_tests >&2 || return 1
  fi
  [ "$(pg_sql postgres "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ] ||
    pg_sql postgres "CREATE DATABASE \"$1\"" >/dev/null || return 1
  TEST_PG_URL=$(pg_url "$1")
}
# stop_named NAME - SIGTERM the process started as NAME; sets STOP_RC
stop_named() { local p; eval "p=\$${1}_PID"; stop_pid "$p" 15; STOP_RC=$?; }
# sanitizer_clean NAME - no ASan/UBSan/LSan report in NAME's log
sanitizer_clean() { ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP/$1/out.log"; }

# dumped DIR... - one line per message dumped by smtp-sink -d:
# "recipient<TAB>subject<TAB>message-id" (several recipients: several lines)
dumped() { $PY - "$@" <<'PY'
import os, sys
for d in sys.argv[1:]:
    for name in sorted(os.listdir(d)):
        rcpts, subj, mid = [], "", ""
        with open(os.path.join(d, name), "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("X-Rcpt-Args: <"):
                    rcpts.append(line[14:].split(">")[0])
                elif line.lower().startswith("subject: ") and not subj:
                    subj = line[9:]
                elif line.lower().startswith("message-id: ") and not mid:
                    mid = line[12:]
                elif line == "" and rcpts:
                    break
        for r in rcpts:
            print(f"{r}\t{subj}\t{mid}")
PY
}

# produce_sent ID=RECIPIENT... - one email.sent event per copy (email_id 1, broadcast
# <email-1@w.test>), sent 60 s ago, into email-events on $BROKERS (kcat)
produce_sent() {
  $PY - "$@" <<'PY' >"$TMP/events.txt"
import json, sys, time
at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 60)) + ".000Z"
for arg in sys.argv[1:]:
    mid, rcpt = arg.split("=")
    ev = {"v": 1, "type": "email.sent", "message_id": mid, "broadcast_id": "<email-1@w.test>",
          "email_id": 1, "recipient": rcpt, "domain": rcpt.split("@")[1], "smtp_client": "custom",
          "sent_at": at}
    print(mid + "\t" + json.dumps(ev, separators=(",", ":")))
PY
  kcat -P -b "$BROKERS" -t email-events -K $'\t' <"$TMP/events.txt" 2>>"$TMP/kcat.err"
}
