#!/bin/bash
# import.sh - POST /users/import of N users on SQLite and on PostgreSQL, side
# by side, twice each: into an empty service, and with E earlier broadcasts
# (paused, so nothing is sent) for which every imported user gets a
# backfilled copy. Measured: users/s of the import (the answer), and the
# time until their user.registered events left the outbox.
# The reference is the same import on SQLite (the embedded default).
#
#   N=100000   users per import
#   E=3        earlier broadcasts in the second run
#   DBS="sqlite postgres"   the engines, in order
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
: "${N:=100000}" "${E:=3}" "${DBS:=sqlite postgres}"
need smtp-sink
need_bins broker warmup

machine_line
note "import: N=$N E=$E engines: $DBS; temp dir $BTMP"
start_broker
SP=$(freeport)
start_sink sink "$SP"
SVC=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" SMTP_TLS=none
  MESSAGE_ID_DOMAIN=sender.bench.test)

# run ENGINE EMAILS - one import on a fresh service; sets RATE, DRAIN
run() {
  local db=$1 e=$2 name=imp_$1_$2 wp url i id r
  BENCH_DB=$db
  wp=$(freeport)
  url=http://127.0.0.1:$wp
  start_warmup "$name" "$wp" "${SVC[@]}"
  for ((i = 0; i < e; i++)); do
    r=$(curl -s -H 'Content-Type: application/json' -d "$(send_json)" "$url/send")
    id=$(echo "$r" | jq -r .email_id)
    [ -n "$id" ] && [ "$id" != null ] || die "POST /send answered: $r"
    curl -s -o /dev/null -X POST "$url/emails/$id/pause"
  done
  import_users "$url" "$N"
  if [ "$e" -gt 0 ]; then
    r=$(curl -s "$url/emails/$id" | jq -r .progress.pending)
    [ "$r" = "$N" ] || die "$db: the last broadcast has $r copies pending after the import, want $N"
  fi
  RATE=$(fmt_rate "$N" "$IMPORT_MS")
  DRAIN=$(fmt_s "$DRAIN_MS")
  echo "import $db E=$e: $N users in $(fmt_s "$IMPORT_MS") s ($RATE users/s), events out after $DRAIN s"
  stop_named "$name"
  drop_db "$name"
}

declare -A rate drain
for e in 0 "$E"; do
  for db in $DBS; do
    run "$db" "$e"
    rate[$db.$e]=$RATE drain[$db.$e]=$DRAIN
  done
done

echo
printf '%-28s %14s %14s %8s\n' "import N=$N" "sqlite users/s" "users/s" "ratio"
for e in 0 "$E"; do
  for db in $DBS; do
    ref=${rate[sqlite.$e]:-}
    printf '%-28s %14s %14s %8s\n' "$db, $e earlier emails" "${ref:--}" "${rate[$db.$e]}" \
      "$([ -n "$ref" ] && fmt_ratio "${rate[$db.$e]}" "$ref" || echo -)"
    [ "$db" = sqlite ] && continue
    summary "import N=$N E=$e ($db)" "${rate[$db.$e]} users/s, events out after ${drain[$db.$e]} s" \
      "sqlite: ${ref:-?} users/s" "x$([ -n "$ref" ] && fmt_ratio "${rate[$db.$e]}" "$ref" || echo ?)"
  done
done
