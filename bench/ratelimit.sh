#!/bin/bash
# ratelimit.sh - achieved send rate versus the configured rate limit.
#
# For each TPM in TPMS and each MODE in MODES, one broadcast to enough users
# that it lasts longer than the window, through the DRYRUN client (each copy
# is an .eml file in a spool directory; its mtime is its send time), with
# Kafka events on:
#   client:   the client's limit, SEND_TPM=TPM;
#   email:    the email's own limit, "tpm":TPM in POST /send (SEND_TPM=0);
#   provider: a THROTTLES_FILE provider holding every recipient domain
#             (".bench.test"), per_minute=TPM;
#   identity: the From is a sending identity whose day's quota is TPM*60
#             over a one-hour window (12:00-13:00 UTC, the identity clock
#             set to 12:00 by WARMUP_CLOCK_OFFSET): the pacer's even spread.
# Achieved rate = copies written during [POST + 1 s, POST + 1 s + D) (the first
# second, which holds the bucket's initial burst, is excluded), per minute;
# cross-checked with GET /emails/{id} progress sampled every 100 ms over the
# same window. Target (issue 6): within 2 % of TPM.
#
#   D=20          window in seconds (full run: D=60)
#   TPMS="600 60000"
#   MODES="client email provider identity"
#   WORKERS=4     DRYRUN workers
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
: "${D:=20}" "${TPMS:=600 60000}" "${MODES:=client email provider identity}" "${WORKERS:=4}"
need_bins broker warmup

max_tpm=0
for t in $TPMS; do [ "$t" -gt "$max_tpm" ] && max_tpm=$t; done
USERS=$((max_tpm * (D + 4) / 60 * 11 / 10 + 100))
machine_line
note "ratelimit: D=${D}s TPMS='$TPMS' MODES='$MODES' WORKERS=$WORKERS, $USERS users; temp dir $BTMP"
start_broker
seed_users "$USERS"

# window_rate SPOOL WATCH D - "spool_tpm progress_tpm copies_in_window"
window_rate() {
  $PY - "$@" <<'PY'
import os, sys
spool, watch, d = sys.argv[1], sys.argv[2], float(sys.argv[3])
kv = dict(l.rstrip("\n").split("=", 1) for l in open(watch))
t0 = float(kv["wall_post"]) + 1.0
t1 = t0 + d
n = 0
for e in os.scandir(spool):
    if e.name.endswith(".eml"):
        m = e.stat().st_mtime_ns / 1e9
        if t0 <= m < t1:
            n += 1
s = [tuple(map(float, l.split()[:2])) for l in open(watch + ".samples")]
a = next((x for x in s if x[0] >= 1000), None)
b = next((x for x in reversed(s) if x[0] <= (1 + d) * 1000), None)
prog = (b[1] - a[1]) / (b[0] - a[0]) * 60000 if a and b and b[0] > a[0] else float("nan")
print("%.1f %.1f %d" % (n / d * 60, prog, n))
PY
}

ROWS=()
for mode in $MODES; do
  for tpm in $TPMS; do
    name=rl_${mode}_$tpm
    copy_db seed "$name"
    WP=$(freeport)
    extra=()
    env_tpm=0
    send_json >"$BTMP/$name.json"
    case $mode in
    client) env_tpm=$tpm ;;
    email) send_json "\"tpm\":$tpm" >"$BTMP/$name.json" ;;
    provider)
      echo "[{\"provider\":\"bench\",\"domains\":[\".bench.test\"],\"per_minute\":$tpm}]" >"$BTMP/$name.throttles"
      extra=(THROTTLES_FILE="$BTMP/$name.throttles") ;;
    identity)
      extra=(WARMUP_CLOCK_OFFSET="$($PY -c 'import time; t=time.time(); print("%.3f" % (86400 * (t // 86400) + 43200 - t))')") ;;
    esac
    start_warmup "$name" "$WP" CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN SMTP_SPOOL_DIR="$BTMP/$name/spool" \
      WORKERS="$WORKERS" SEND_TPM="$env_tpm" MESSAGE_ID_DOMAIN=sender.bench.test "${extra[@]}"
    if [ "$mode" = identity ]; then
      from=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["from"])' "$BTMP/$name.json")
      q=$((tpm * 60))
      curl -sf -o /dev/null -H 'Content-Type: application/json' "http://127.0.0.1:$WP/identities" \
        -d "{\"address\":\"$from\",\"warmup\":{\"start_per_day\":$q,\"growth_pct\":0,\"max_per_day\":$q,\"start_date\":\"2020-01-01\"},\"window\":{\"start\":\"12:00\",\"end\":\"13:00\",\"tz\":\"UTC\"}}" ||
        die "POST /identities failed (log: $BTMP/$name/out.log)"
    fi
    pid_var=${name}_PID
    watch_send "http://127.0.0.1:$WP" "${!pid_var}" "$USERS" "$BTMP/$name.watch" --body "$BTMP/$name.json" \
      --duration "$(awk -v d="$D" 'BEGIN { print d + 1.5 }')" --poll 0.1 ||
      die "watching the broadcast failed (log: $BTMP/$name/out.log)"
    sent=$(kv "$BTMP/$name.watch" sent)
    [ "$sent" -lt "$USERS" ] || note "$name: the broadcast ended inside the window; raise the user count"
    read -r spool_tpm prog_tpm inwin < <(window_rate "$BTMP/$name/spool" "$BTMP/$name.watch" "$D")
    stop_named "$name"
    rm -rf "${BTMP:?}/$name"
    err=$(awk -v a="$spool_tpm" -v t="$tpm" 'BEGIN { printf "%+.2f", (a - t) * 100 / t }')
    perr=$(awk -v a="$prog_tpm" -v t="$tpm" 'BEGIN { printf "%+.2f", (a - t) * 100 / t }')
    ROWS+=("$mode $tpm $spool_tpm $err $prog_tpm $perr $inwin")
    summary "ratelimit $mode tpm=$tpm D=$D" "$spool_tpm/min ($err %)" "within 2 %" "$(verdict "($spool_tpm - $tpm) <= 0.02 * $tpm && ($tpm - $spool_tpm) <= 0.02 * $tpm")"
    note "$mode tpm=$tpm: achieved $spool_tpm/min ($err %)"
  done
done

echo "rate limit: achieved rate over a ${D} s window (first second after POST /send excluded), DRYRUN client, target within 2 %"
printf '%-7s %10s %14s %9s %16s %9s %10s\n' limit "target/min" "achieved/min" "error %" "progress/min" "error %" "copies"
for r in "${ROWS[@]}"; do
  # shellcheck disable=SC2086
  printf '%-7s %10s %14s %9s %16s %9s %10s\n' $r
done
echo "(achieved: .eml files written in the window, from their mtimes; progress: GET /emails/{id} sent,"
echo " sampled every 100 ms, over the same window; limit client = SEND_TPM, email = \"tpm\" in POST /send,"
echo " provider = THROTTLES_FILE per_minute, identity = a day's quota of TPM*60 over a one-hour window)"
