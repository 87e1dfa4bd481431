#!/bin/bash
# dkim.sh - the CPU cost of DKIM signing on the send path (DESIGN 9.1, "DKIM
# benchmark target").
#
# One run prints, side by side: warmup-service's CPU per copy for the same
# broadcast (N users, 2 KB body, CUSTOM client to a Postfix smtp-sink on
# loopback, WORKERS=W, Kafka events on) unsigned, signed rsa-sha256 (2048
# bits), ed25519-sha256 and both; what signing adds per copy; the cost of the
# same signatures from `openssl speed` on this machine; and smtp-source's CPU
# per message with its speed, the reference of bench/send.sh. The
# configurations run interleaved REPS times (the median is printed) so a
# busy neighbour weighs on all of them alike.
# Goal: signing adds at most 1.1x the `openssl speed` cost of the signatures it makes.
#
#   N=10000      recipients per broadcast
#   W=4          WORKERS (and smtp-source -s)
#   REPS=3       interleaved runs of each configuration
#   CONFIGS="none rsa ed25519 both"
#   TIMEOUT=600  seconds allowed for one broadcast
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
: "${N:=10000}" "${W:=4}" "${REPS:=3}" "${CONFIGS:=none rsa ed25519 both}" "${TIMEOUT:=600}"
need smtp-sink smtp-source openssl
[ -x /usr/bin/time ] || die "/usr/bin/time missing: apt-get install time"
need_bins broker warmup

machine_line
note "dkim: N=$N W=$W REPS=$REPS CONFIGS='$CONFIGS'; temp dir $BTMP"

# keys and one DKIM_KEYS_FILE per configuration (From is noreply@sender.bench.test)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$BTMP/rsa.pem" 2>/dev/null || die "openssl genpkey rsa"
openssl genpkey -algorithm ED25519 -out "$BTMP/ed.pem" 2>/dev/null || die "openssl genpkey ed25519"
keyent() { echo "{\"domain\":\"sender.bench.test\",\"selector\":\"$1\",\"algorithm\":\"$2\",\"key_file\":\"$3\"}"; }
RSA_E=$(keyent r1 rsa-sha256 "$BTMP/rsa.pem")
ED_E=$(keyent e1 ed25519-sha256 "$BTMP/ed.pem")
echo "[$RSA_E]" >"$BTMP/keys-rsa.json"
echo "[$ED_E]" >"$BTMP/keys-ed25519.json"
echo "[$RSA_E,$ED_E]" >"$BTMP/keys-both.json"

# openssl speed: microseconds per signature, one core
ospeed=$(openssl speed -seconds 2 rsa2048 ed25519 2>/dev/null)
RSA_US=$(echo "$ospeed" | awk '$1 == "rsa" && $2 == "2048" { printf "%.1f", 1e6 / $(NF-1) }')
ED_US=$(echo "$ospeed" | awk '$3 == "EdDSA" && $4 == "(Ed25519)" { printf "%.1f", 1e6 / $(NF-1) }')
[ -n "$RSA_US" ] && [ -n "$ED_US" ] || die "cannot read openssl speed's output: $ospeed"
note "openssl speed: rsa2048 sign ${RSA_US} us, ed25519 sign ${ED_US} us"
sig_us() { case $1 in none) echo 0 ;; rsa) echo "$RSA_US" ;; ed25519) echo "$ED_US" ;;
  both) awk -v a="$RSA_US" -v b="$ED_US" 'BEGIN { printf "%.1f", a + b }' ;; esac; }

start_broker
send_json >"$BTMP/send.json"
seed_users "$N"

# reference: smtp-source, same concurrency, same kind of sink
SP=$(freeport)
start_sink ref "$SP"
t0=$(now_ms)
timeout "$TIMEOUT" /usr/bin/time -f '%U %S' -o "$BTMP/ref.time" smtp-source -d -s "$W" -m "$N" -l 2048 -f noreply@sender.bench.test \
  -t rcpt@d0.bench.test -S "Hello" "127.0.0.1:$SP" >"$BTMP/ref.out" 2>&1 || die "smtp-source failed: $(tail -3 "$BTMP/ref.out")"
REF_MS=$(($(now_ms) - t0))
REF_CPU_US=$(awk -v n="$N" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$BTMP/ref.time")
stop_pid "$SINK_PID"

# run CONFIG REP - one broadcast; appends "CONFIG cpu_us_per_copy msgs_per_s" to $BTMP/runs
run() {
  local cfg=$1 rep=$2 name="w_$1_$2" keys=() pid c0 c1 ms
  [ "$cfg" = none ] || keys=(DKIM_KEYS_FILE="$BTMP/keys-$cfg.json")
  SP=$(freeport)
  start_sink "sink_$name" "$SP"
  copy_db seed "$name"
  WP=$(freeport)
  start_warmup "$name" "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" \
    SMTP_TLS=none WORKERS="$W" MESSAGE_ID_DOMAIN=sender.bench.test "${keys[@]}"
  pid_var=${name}_PID
  pid=${!pid_var}
  c0=$(cpu_ms "$pid")
  watch_send "http://127.0.0.1:$WP" "$pid" "$N" "$BTMP/$name.watch" --body "$BTMP/send.json" --timeout "$TIMEOUT" ||
    die "broadcast $name did not finish (log: $BTMP/$name/out.log)"
  wait_for 300 metric_is "http://127.0.0.1:$WP" outbox_pending 0 || die "outbox did not drain within 300 s"
  c1=$(cpu_ms "$pid")
  ms=$(kv "$BTMP/$name.watch" done_ms)
  [ "$(sink_settle "sink_$name" "$N")" = "$N" ] || die "the sink of $name did not get $N messages"
  stop_named "$name"
  stop_pid "$SINK_PID"
  rm -rf "${BTMP:?}/$name"
  echo "$cfg $(awk -v c=$((c1 - c0)) -v n="$N" 'BEGIN { printf "%.1f", c * 1000 / n }') $(fmt_rate "$N" "${ms%.*}")" >>"$BTMP/runs"
  note "rep $rep $cfg: $(tail -1 "$BTMP/runs")"
}

for ((rep = 1; rep <= REPS; rep++)); do
  for cfg in $CONFIGS; do run "$cfg" "$rep"; done
done

# median - the median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
base=$(awk '$1 == "none" { print $2 }' "$BTMP/runs" | median)
echo "DKIM signing cost: N=$N copies per run, W=$W, 2048-byte body, $REPS interleaved runs (median), smtp-sink on 127.0.0.1"
printf '%-8s %12s %12s %14s %12s %10s %12s\n' config "CPU us/copy" "added us" "openssl us" "added/ossl" "msgs/s" "vs smtp-src"
for cfg in $CONFIGS; do
  cpu=$(awk -v c="$cfg" '$1 == c { print $2 }' "$BTMP/runs" | median)
  rate=$(awk -v c="$cfg" '$1 == c { print $3 }' "$BTMP/runs" | median)
  sig=$(sig_us "$cfg")
  added=$(awk -v a="$cpu" -v b="$base" 'BEGIN { printf "%.1f", a - b }')
  ratio=$(awk -v a="$added" -v s="$sig" 'BEGIN { if (s <= 0) print "-"; else printf "%.2f", a / s }')
  printf '%-8s %12s %12s %14s %12s %10s %12s\n' "$cfg" "$cpu" "$added" "$sig" "$ratio" "$rate" \
    "$(awk -v r="$rate" -v n="$N" -v ms="$REF_MS" 'BEGIN { printf "%.2f", r / (n * 1000 / ms) }')"
  [ "$cfg" = none ] || summary "dkim $cfg W=$W N=$N" "adds $added us/copy for $sig us of openssl signatures" "added/openssl <= 1.10" \
    "$ratio $(verdict "$ratio <= 1.10")"
done
echo "smtp-source: $(fmt_rate "$N" "$REF_MS") msgs/s, ${REF_CPU_US} us CPU per message"
echo "(CPU = warmup-service user+system from POST /send until every event is acknowledged, per copy;"
echo " added = CPU us/copy minus the unsigned run's; openssl us = the same signatures' cost from"
echo " 'openssl speed' (rsa2048 sign, ed25519 sign) on one core; added/ossl goal <= 1.10;"
echo " vs smtp-src = msgs/s / smtp-source msgs/s)"
