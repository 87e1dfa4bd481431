#!/bin/bash
# local-stack.sh start|stop|status|logs - the local stack of `make all`, all
# on 127.0.0.1:
#   kafka-dev-broker   a real Kafka-protocol broker (in memory, random ports)
#   mail catcher       Mailpit when `mailpit` is on the PATH, else maildev
#                      (npm, .cache/maildev): SMTP on 1025, web UI on 1080
#   warmup-service     :8080, MAILPIT client -> the catcher
#   health-service     :8081, mock feedback loops
# PIDs and logs under run/, data under data/. Starting twice does not start
# duplicates; stop stops exactly what start started (the PIDs it recorded).
#
# Every port and folder can be moved (the smoke test runs an isolated copy):
#   WARMUP_PORT HEALTH_PORT SMTP_CATCHER_PORT CATCHER_UI_PORT RUN_DIR DATA_DIR BUILD
set -u
cd "$(dirname "$0")/.."
TOP=$(pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
RUN=${RUN_DIR:-$TOP/run}
DATA=${DATA_DIR:-$TOP/data}
WARMUP_PORT=${WARMUP_PORT:-8080}
HEALTH_PORT=${HEALTH_PORT:-8081}
SMTP_PORT=${SMTP_CATCHER_PORT:-1025}
UI_PORT=${CATCHER_UI_PORT:-1080}
MAILDEV_JS=$TOP/.cache/maildev/node_modules/maildev/dist/bin/maildev.js
PARTS="mail-catcher kafka-dev-broker warmup-service health-service"

alive() { local s; s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$s" != Z ]; }
pid_of() { [ -f "$RUN/$1.pid" ] && cat "$RUN/$1.pid"; }
running() { local p; p=$(pid_of "$1") && [ -n "$p" ] && alive "$p"; }
fail() { echo "$*" >&2; exit 1; }

wait_http() { # URL SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        curl -fsS -o /dev/null -H "Accept: text/html" "$1" 2>/dev/null && return 0 # maildev: the UI for browsers
        sleep 0.1
    done
    return 1
}
wait_tcp() { # PORT SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

start_one() { # NAME CMD... (environment already exported)
    local name=$1
    shift
    if running "$name"; then
        echo "$name already running (pid $(pid_of "$name"))"
        return 0
    fi
    nohup "$@" >"$RUN/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
    echo "$name started (pid $!)"
}

start_catcher() {
    if command -v mailpit >/dev/null 2>&1; then
        CATCHER=mailpit
        start_one mail-catcher mailpit --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$UI_PORT" \
            --database "$DATA/mailpit.db"
    elif [ -f "$MAILDEV_JS" ] && command -v node >/dev/null 2>&1; then
        CATCHER=maildev
        mkdir -p "$DATA/maildev"
        start_one mail-catcher node "$MAILDEV_JS" --ip 127.0.0.1 --web-ip 127.0.0.1 -s "$SMTP_PORT" \
            -w "$UI_PORT" --mail-directory "$DATA/maildev"
    else
        fail "no mail catcher: install mailpit, or npm so that deploy/install-maildev.sh can install maildev"
    fi
}

start_broker() {
    if running kafka-dev-broker; then
        echo "kafka-dev-broker already running (pid $(pid_of kafka-dev-broker))"
        return 0
    fi
    rm -f "$RUN/bootstrap"
    # the broker keeps data in memory: services restarted with it get a new bootstrap list
    nohup "$BUILD/deploy/dev-broker/kafka-dev-broker" -f "$RUN/bootstrap" \
        >"$RUN/kafka-dev-broker.log" 2>&1 </dev/null &
    echo $! >"$RUN/kafka-dev-broker.pid"
    local i
    for ((i = 0; i < 100; i++)); do [ -s "$RUN/bootstrap" ] && break; sleep 0.05; done
    [ -s "$RUN/bootstrap" ] || fail "kafka-dev-broker failed; see $RUN/kafka-dev-broker.log"
    echo "kafka-dev-broker started (pid $(pid_of kafka-dev-broker)) at $(head -1 "$RUN/bootstrap")"
}

start() {
    mkdir -p "$RUN" "$DATA"
    [ -x "$BUILD/warmup-service/warmup-service" ] || fail "not built: run make all"
    start_catcher
    start_broker
    local brokers
    brokers=$(head -1 "$RUN/bootstrap")
    (export PORT=$WARMUP_PORT KAFKA_BROKERS=$brokers DB_PATH=$DATA/warmup-service.db \
        CHOOSEN_SMTP_CLIENT_TYPE=MAILPIT MAILPIT_SMTP_ADDR=127.0.0.1:$SMTP_PORT
     start_one warmup-service "$BUILD/warmup-service/warmup-service")
    (export PORT=$HEALTH_PORT KAFKA_BROKERS=$brokers DB_PATH=$DATA/health-service.db
     start_one health-service "$BUILD/health-service/health-service")

    wait_tcp "$SMTP_PORT" 60 && wait_http "http://127.0.0.1:$UI_PORT/" 60 ||
        fail "the mail catcher is not answering; see $RUN/mail-catcher.log"
    wait_http "http://127.0.0.1:$WARMUP_PORT/readyz" 30 ||
        fail "warmup-service is not ready; see $RUN/warmup-service.log"
    wait_http "http://127.0.0.1:$HEALTH_PORT/readyz" 30 ||
        fail "health-service is not ready; see $RUN/health-service.log"
    local w=http://127.0.0.1:$WARMUP_PORT
    cat <<EOT

Ready:
  warmup-service  $w                  (logs: $RUN/warmup-service.log)
  health-service  http://127.0.0.1:$HEALTH_PORT      (logs: $RUN/health-service.log)
  mail ($CATCHER)  http://127.0.0.1:$UI_PORT      (SMTP 127.0.0.1:$SMTP_PORT)
  kafka           $brokers
  metrics         $w/metrics  http://127.0.0.1:$HEALTH_PORT/metrics

Try:
  curl -s -X POST -H 'Content-Type: application/json' -d '{"name":"Alice","email_id":"alice@example.com"}' $w/register
  curl -s -X POST -H 'Content-Type: application/json' -d '{"name":"Bob","email_id":"bob@example.org"}' $w/register
  curl -s -X POST -H 'Content-Type: application/json' -d '{"from":"warmup@example.net","subject":"Hello {{name}}","body":"First warmup mail."}' $w/send
then open http://127.0.0.1:$UI_PORT and curl -s 'http://127.0.0.1:$HEALTH_PORT/mail_stats?email_id=1'
Stop with: make stop     Logs: make logs
EOT
}

stop_one() {
    local name=$1 p i
    p=$(pid_of "$name") || return 0
    if [ -n "$p" ] && alive "$p"; then
        kill -TERM "$p" 2>/dev/null
        for ((i = 0; i < 300; i++)); do alive "$p" || break; sleep 0.05; done
        alive "$p" && kill -KILL "$p"
        echo "$name stopped"
    fi
    rm -f "$RUN/$name.pid"
}

stop() {
    # the services first, so that they flush to the broker and the catcher
    stop_one warmup-service
    stop_one health-service
    stop_one kafka-dev-broker
    stop_one mail-catcher
    rm -f "$RUN/bootstrap"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
    for n in $PARTS; do
        if running "$n"; then echo "$n running (pid $(pid_of "$n"))"; else echo "$n stopped"; fi
    done
    ;;
logs) exec tail -n 50 -F "$RUN"/*.log ;;
*)
    echo "usage: $0 start|stop|status|logs"
    exit 2
    ;;
esac
