#!/bin/bash
# local-stack.sh start|stop|status|logs - the local stack of `make all`:
# kafka-dev-broker, warmup-service (:8080) and health-service (:8081) on
# 127.0.0.1, PIDs and logs under run/, data under data/. Starting twice
# does not start duplicates; stop stops exactly what start started.
set -u
cd "$(dirname "$0")/.."
TOP=$(pwd)
BUILD=${BUILD:-build}
RUN=$TOP/run
DATA=$TOP/data
WARMUP_PORT=${WARMUP_PORT:-8080}
HEALTH_PORT=${HEALTH_PORT:-8081}

alive() { local s; s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$s" != Z ]; }
pid_of() { [ -f "$RUN/$1.pid" ] && cat "$RUN/$1.pid"; }
running() { local p; p=$(pid_of "$1") && [ -n "$p" ] && alive "$p"; }

wait_http() { # URL SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
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

start() {
    mkdir -p "$RUN" "$DATA"
    if ! running kafka-dev-broker; then
        rm -f "$RUN/bootstrap"
        # the broker keeps data in memory: services restarted with it get a new bootstrap list
        nohup "$BUILD/deploy/dev-broker/kafka-dev-broker" -f "$RUN/bootstrap" \
            >"$RUN/kafka-dev-broker.log" 2>&1 </dev/null &
        echo $! >"$RUN/kafka-dev-broker.pid"
        for ((i = 0; i < 100; i++)); do [ -s "$RUN/bootstrap" ] && break; sleep 0.05; done
        [ -s "$RUN/bootstrap" ] || { echo "kafka-dev-broker failed; see $RUN/kafka-dev-broker.log"; exit 1; }
        echo "kafka-dev-broker started (pid $(pid_of kafka-dev-broker)) at $(cat "$RUN/bootstrap")"
    else
        echo "kafka-dev-broker already running (pid $(pid_of kafka-dev-broker))"
    fi
    local brokers
    brokers=$(head -1 "$RUN/bootstrap")
    (export PORT=$WARMUP_PORT KAFKA_BROKERS=$brokers DB_PATH=$DATA/warmup-service.db
     start_one warmup-service "$BUILD/warmup-service/warmup-service")
    (export PORT=$HEALTH_PORT KAFKA_BROKERS=$brokers DB_PATH=$DATA/health-service.db
     start_one health-service "$BUILD/health-service/health-service")
    wait_http "http://127.0.0.1:$WARMUP_PORT/healthz" 20 || { echo "warmup-service is not answering; see $RUN/warmup-service.log"; exit 1; }
    wait_http "http://127.0.0.1:$HEALTH_PORT/healthz" 20 || { echo "health-service is not answering; see $RUN/health-service.log"; exit 1; }
    cat <<EOT

Ready:
  warmup-service  http://127.0.0.1:$WARMUP_PORT   (logs: $RUN/warmup-service.log)
  health-service  http://127.0.0.1:$HEALTH_PORT   (logs: $RUN/health-service.log)
  kafka           $brokers

Try:
  curl -s -X POST -H 'Content-Type: application/json' -d '{"name":"Alice","email_id":"alice@example.com"}' http://127.0.0.1:$WARMUP_PORT/register
  curl -s -X POST -H 'Content-Type: application/json' -d '{"name":"Bob","email_id":"bob@example.org"}' http://127.0.0.1:$WARMUP_PORT/register
  curl -s http://127.0.0.1:$HEALTH_PORT/domains
Stop with: make stop
EOT
}

stop_one() {
    local name=$1 p i
    p=$(pid_of "$name") || return 0
    if [ -n "$p" ] && alive "$p"; then
        kill -TERM "$p" 2>/dev/null
        for ((i = 0; i < 200; i++)); do alive "$p" || break; sleep 0.05; done
        alive "$p" && kill -KILL "$p"
        echo "$name stopped"
    fi
    rm -f "$RUN/$name.pid"
}

stop() {
    stop_one warmup-service
    stop_one health-service
    stop_one kafka-dev-broker
    rm -f "$RUN/bootstrap"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) for n in kafka-dev-broker warmup-service health-service; do
            if running $n; then echo "$n running (pid $(pid_of $n))"; else echo "$n stopped"; fi; done ;;
logs) exec tail -n 50 -F "$RUN"/*.log ;;
*) echo "usage: $0 start|stop|status|logs"; exit 2 ;;
esac
