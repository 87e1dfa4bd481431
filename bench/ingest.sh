#!/bin/bash
# ingest.sh - event ingest rate of health-service.
#
# N email.sent events, valid per the contract (README "Events"; a unique,
# random Message-ID per event as warmup-service makes them, key = Message-ID,
# spread over EMAILS broadcasts and 50 domains) are generated to a file, then produced to the dev broker's topic
# email-events with kcat as fast as it goes. Then:
#   backlog: health-service is started on the full topic; timed from its
#            launch until /metrics health_tracked_copies == N;
#   live:    health-service is running (and has joined its group) before the
#            events are produced; timed from the start of kcat until
#            health_tracked_copies == N (producer and consumer overlap).
# Afterwards a sample of copies (SAMPLE Message-IDs) and the per-broadcast
# totals are checked through /mail_stats and /all_mail_stats, and the CPU
# time of each health-service thread and of the broker is printed.
# Target (issue 6, N=1,000,000): >= 100,000 events/s.
#
#   N=200000          events (full run: N=1000000)
#   EMAILS=100        broadcasts the events belong to
#   INGEST_MODE=both  backlog, live or both
#   PARTITIONS=       partitions of the topics (default: max(3, N/12000); the dev
#                     broker keeps only ~5 MB per partition, see common.sh)
#   CHECK_INTERVAL=86400  health-service feedback-loop interval (large: ingest only)
#   SAMPLE=20         copies looked up through /mail_stats?mail_id=
#   TIMEOUT=900       seconds allowed for the ingest
#   DB_FILES=1        health-service store files (passed through; 4: the parallel writers)
#   BENCH_DB=sqlite   or postgres: health-service on a throwaway PostgreSQL cluster
#                     (tests/integration/pg.sh; one database per mode)
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
: "${N:=200000}" "${EMAILS:=100}" "${INGEST_MODE:=both}" "${CHECK_INTERVAL:=86400}"
: "${SAMPLE:=20}" "${TIMEOUT:=900}"
: "${PARTITIONS:=$(((N + 11999) / 12000 < 3 ? 3 : (N + 11999) / 12000))}"
need kcat
need_bins broker health
case $INGEST_MODE in backlog) MODES=backlog ;; live) MODES=live ;; both) MODES="backlog live" ;;
  *) die "INGEST_MODE must be backlog, live or both" ;; esac

machine_line
note "ingest: N=$N EMAILS=$EMAILS PARTITIONS=$PARTITIONS DB_FILES=${DB_FILES:-1} modes: $MODES; temp dir $BTMP"
t0=$(now_ms)
gen_events "$BTMP/events.tsv" "$N" "$EMAILS"
note "generated $N events ($(du -m "$BTMP/events.tsv" | cut -f1) MB) in $(fmt_s $(($(now_ms) - t0))) s"

# wait_tracked URL WANT T0_MS - poll health_tracked_copies every 50 ms; sets TRACKED_MS,
# FIRST_MS (first poll that saw a tracked copy) and FIRST_N (the count then).
# Gives up after TIMEOUT s, or 60 s without progress.
wait_tracked() {
  local url=$1 want=$2 t0=$3 deadline v last=-1 last_t
  deadline=$(($(now_ms) + TIMEOUT * 1000))
  last_t=$(now_ms)
  FIRST_MS=""
  FIRST_N=0
  while :; do
    v=$(metric "$url" health_tracked_copies)
    if [ -z "$FIRST_MS" ] && [ "${v:-0}" -gt 0 ]; then
      FIRST_MS=$(($(now_ms) - t0))
      FIRST_N=$v
    fi
    [ "${v:-0}" = "$want" ] && break
    [ "$(now_ms)" -gt "$deadline" ] && die "health_tracked_copies is ${v:-?} after $TIMEOUT s, want $want (log: $BTMP/health_*/out.log)"
    if [ "${v:-0}" != "$last" ]; then
      last=${v:-0}
      last_t=$(now_ms)
    elif [ $(($(now_ms) - last_t)) -gt 60000 ]; then
      die "health_tracked_copies stuck at ${v:-?} for 60 s, want $want (log: $BTMP/health_*/out.log)"
    fi
    sleep 0.05
  done
  TRACKED_MS=$(($(now_ms) - t0))
}

# verify URL - sample copies answer /mail_stats; the broadcasts' totals add up to N
verify() {
  local url=$1 mid rcpt r bad=0 total
  while IFS=$'\t' read -r mid _; do
    r=$(curl -s -G --data-urlencode "mail_id=$mid" "$url/mail_stats")
    rcpt=$(echo "$r" | jq -r '.recipient // empty')
    [ -n "$rcpt" ] && [ "$(echo "$r" | jq -r .tracked)" = 1 ] || { bad=$((bad + 1)); note "mail_id=$mid -> $r"; }
  done < <(shuf -n "$SAMPLE" "$BTMP/events.tsv")
  r=$(curl -s "$url/mail_stats?email_id=1")
  [ "$(echo "$r" | jq -r .tracked)" = "$(((N + EMAILS - 1) / EMAILS))" ] || { bad=$((bad + 1)); note "email_id=1 -> $r"; }
  total=$(curl -s "$url/all_mail_stats?limit=1000" | jq '[.[].tracked] | add')
  [ "$total" = "$N" ] || { bad=$((bad + 1)); note "/all_mail_stats tracked total $total, want $N"; }
  [ "$bad" = 0 ] || die "$bad lookups did not answer as expected"
  VERIFIED="$SAMPLE copies + $EMAILS broadcasts ok"
}

# check_span - the topic holds the N events from offset 0 on (none dropped by the broker)
check_span() {
  local span
  span=$(topic_span email-events "$PARTITIONS")
  [ "$span" = "0 $N" ] || die "email-events holds offsets '$span' (low high), want '0 $N': the dev broker dropped events; raise PARTITIONS"
}

ROWS=()
THREADS=()
if [ "${BENCH_DB:-sqlite}" = postgres ]; then
  . "$(dirname "$0")/../tests/integration/pg.sh"
  start_pg "$BTMP/pg" $MODES || die "PostgreSQL did not start"
  note "health-service on PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') (fsync=off)"
fi
for mode in $MODES; do
  start_broker "$PARTITIONS"
  HP=$(freeport)
  H_URL=http://127.0.0.1:$HP
  HENV=(CHECK_INTERVAL="$CHECK_INTERVAL" KAFKA_GROUP_ID="bench-$mode")
  [ "${BENCH_DB:-sqlite}" = postgres ] && HENV+=(DATABASE_URL="$(pg_url "$mode")")
  if [ "$mode" = backlog ]; then
    t0=$(now_ms)
    produce_events "$BTMP/events.tsv" || die "kcat could not produce the events"
    prod_ms=$(($(now_ms) - t0))
    check_span
    t0=$(now_ms)
    broker0=$(cpu_ms "$BROKER_PID")
    start_health "health_$mode" "$HP" "${HENV[@]}"
    pid_var=health_${mode}_PID
    perf_start "${!pid_var}" "health-$mode"
    wait_tracked "$H_URL" "$N" "$t0"
    perf_stop "$N" event
  else
    start_health "health_$mode" "$HP" "${HENV[@]}"
    pid_var=health_${mode}_PID
    wait_for 60 curl -fsS "$H_URL/readyz" || die "health-service not ready within 60 s"
    # the consumer has joined its group and has its partitions once the lag is
    # known (0 on the empty topics); the dev broker delays a group's first join
    # by 3 s, like Kafka's group.initial.rebalance.delay.ms
    wait_for 30 metric_is "$H_URL" health_consumer_lag 0 || die "health-service did not join its consumer group within 30 s"
    t0=$(now_ms)
    broker0=$(cpu_ms "$BROKER_PID")
    # kcat in the background: the service ingests while it produces
    (produce_events "$BTMP/events.tsv" && echo $(($(now_ms) - t0)) >"$BTMP/prod_ms") &
    prod_pid=$!
    perf_start "${!pid_var}" "health-$mode"
    wait_tracked "$H_URL" "$N" "$t0"
    perf_stop "$N" event
    wait "$prod_pid" || die "kcat could not produce the events"
    prod_ms=$(cat "$BTMP/prod_ms")
    check_span
  fi
  pid=${!pid_var}
  cpu=$(cpu_ms "$pid")
  THREADS+=("$mode: health-service threads (CPU s from launch) $(thread_cpu "$pid"); kafka-dev-broker $(fmt_s $(($(cpu_ms "$BROKER_PID") - broker0))) CPU s over the same $(fmt_s "$TRACKED_MS") s")
  hwm=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
  verify "$H_URL"
  invalid=$(metric "$H_URL" health_events_invalid_total)
  stop_named "health_$mode"
  stop_pid "$BROKER_PID"
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "${BTMP:?}/health_$mode"
  steady=$(fmt_rate "$((N - FIRST_N))" "$((TRACKED_MS - FIRST_MS))")
  ROWS+=("$mode $(fmt_rate "$N" "$prod_ms") $(fmt_rate "$N" "$TRACKED_MS") $(fmt_ratio "$(fmt_rate "$N" "$TRACKED_MS")" 100000) $(fmt_s "$TRACKED_MS") $(fmt_s "$FIRST_MS") $steady $(fmt_s "$cpu") $hwm ${invalid:-0}")
  summary "ingest $mode N=$N" "$(fmt_rate "$N" "$TRACKED_MS") events/s (then $steady/s after $(fmt_s "$FIRST_MS") s)" ">= 100000 events/s" "x$(fmt_ratio "$(fmt_rate "$N" "$TRACKED_MS")" 100000) $(verdict "$(fmt_rate "$N" "$TRACKED_MS") >= 100000")"
  note "$mode: $(fmt_rate "$N" "$TRACKED_MS") events/s ($VERIFIED)"
done

echo "event ingest: N=$N email.sent events over $EMAILS broadcasts, kafka-dev-broker (3 brokers, $PARTITIONS partitions), target >= 100000 events/s"
printf '%-8s %12s %10s %10s %8s %8s %10s %8s %8s %8s\n' mode "kcat prod/s" "ingest/s" "vs target" "wall s" "first s" "steady/s" "CPU s" "HWM MB" invalid
for r in "${ROWS[@]}"; do
  # shellcheck disable=SC2086
  printf '%-8s %12s %10s %10s %8s %8s %10s %8s %8s %8s\n' $r
done
echo "(backlog: events produced first, timed from health-service launch to health_tracked_copies=N;"
echo " live: health-service running, timed from the start of kcat to health_tracked_copies=N;"
echo " first = until the first copy is tracked (start-up, group join); steady = the rest of the events over the rest of the time;"
echo " CPU = user+system seconds of health-service from launch; every run then checks $SAMPLE copies and the totals)"
printf '%s\n' "${THREADS[@]}"
perf_print
