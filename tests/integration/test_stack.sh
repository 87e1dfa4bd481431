#!/bin/bash
# test_stack.sh - the newcomer's first hour, as a smoke test (TAP): `make
# all` with isolated ports and run/ and data/ folders starts the local stack
# (kafka-dev-broker, maildev, warmup-service, health-service), the three curl
# commands it prints are run as printed, the email shows up in maildev's
# REST API and at the health service, a second `make all` starts nothing,
# `make logs` tails the logs and `make stop` leaves no process of the stack.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/maildev.sh"

if ! maildev_available; then
  echo "1..0 # SKIP maildev not installed (deploy/install-maildev.sh needs npm)"
  exit 0
fi

export WARMUP_PORT=$(freeport) HEALTH_PORT=$(freeport) SMTP_CATCHER_PORT=$(freeport) CATCHER_UI_PORT=$(freeport)
export RUN_DIR=$TMP/run DATA_DIR=$TMP/data
W=http://127.0.0.1:$WARMUP_PORT
H=http://127.0.0.1:$HEALTH_PORT
MAILDEV_API=http://127.0.0.1:$CATCHER_UI_PORT/api
mk() { make -s -C "$SRC_DIR" --no-print-directory BUILD="$BUILD_DIR" "$@" </dev/null 2>&1; }
pids() { cat "$RUN_DIR"/*.pid 2>/dev/null | sort -n | tr '\n' ' '; }
# stack_procs - every live process whose command line names this stack's run or data folder
stack_procs() { local p n=0
  for p in $(pgrep -f "$TMP/" 2>/dev/null); do
    [ "$p" = $$ ] || ! alive "$p" || grep -qa "make\|bash" "/proc/$p/comm" || n=$((n + 1))
  done; echo $n; }
# on failure, stop the stack anyway
trap 'mk stop >/dev/null; cleanup' EXIT

mk all >"$TMP/all.out"
ok $? "make all (isolated ports and folders) exits 0" || sed 's/^/#   /' "$TMP/all.out"
for part in mail-catcher kafka-dev-broker warmup-service health-service; do
  p=$(cat "$RUN_DIR/$part.pid" 2>/dev/null)
  ok "$([ -n "$p" ] && alive "$p"; echo $?)" "$part running, its PID in run/$part.pid ($p)"
done
grep -q "^  warmup-service  $W " "$TMP/all.out" && grep -q "^  health-service  $H " "$TMP/all.out" &&
  grep -q "^  mail (maildev)  http://127.0.0.1:$CATCHER_UI_PORT " "$TMP/all.out"
ok $? "it prints the URLs of both services and of the mail UI"
check "warmup /readyz 200" -- curl -fsS "$W/readyz"
check "health /readyz 200" -- curl -fsS "$H/readyz"
check "the mail UI answers a browser" -- curl -fsS -H 'Accept: text/html' "http://127.0.0.1:$CATCHER_UI_PORT/"
eq "the stack listens on 127.0.0.1 only" \
  "$(ss -Hltn | awk '{print $4}' | grep -E ":($WARMUP_PORT|$HEALTH_PORT|$SMTP_CATCHER_PORT|$CATCHER_UI_PORT)\$" | grep -vc '^127\.0\.0\.1:')" 0

# --- the curl tour, exactly as printed ------------------------------------------
grep '^  curl -s -X POST' "$TMP/all.out" >"$TMP/tour.sh"
eq "three curl commands printed" "$(wc -l <"$TMP/tour.sh")" 3
i=0
while read -r cmd; do
  i=$((i + 1))
  out=$(bash -c "$cmd -w ' %{http_code}'")
  echo "# $i: ${out}"
  case $i in 1 | 2) want=201 ;; 3) want=202 ;; esac
  eq "curl $i of the tour -> $want" "${out##* }" "$want"
done <"$TMP/tour.sh"
maildev_wait_count 2 20
ok $? "maildev received the broadcast (2 copies)"
eq "maildev's REST API: one copy per user, subject personalised" \
  "$(maildev_emails | $PY -c 'import json,sys; print(sorted((e["to"][0]["address"], e["subject"]) for e in json.load(sys.stdin)))')" \
  "[('alice@example.com', 'Hello Alice'), ('bob@example.org', 'Hello Bob')]"
tracked2() { [ "$(jget "$(curl -s "$H/mail_stats?email_id=1")" 'j["tracked"]')" = 2 ]; }
wait_for 30 tracked2
ok $? "health /mail_stats?email_id=1 tracks both copies"
checked() { [ "$(jget "$(curl -s "$H/mail_stats?email_id=1")" 'j["checked_at"] is not None')" = True ]; }
wait_for 90 checked
ok $? "... and a mock feedback-loop round checked them"

# --- idempotent start, logs --------------------------------------------------------
before=$(pids)
n_before=$(stack_procs)
mk all >"$TMP/all2.out"
ok $? "make all a second time exits 0"
eq "it starts nothing new: same PIDs" "$(pids)" "$before"
eq "... and no duplicate process" "$(stack_procs)" "$n_before"
eq "it says each part is already running" "$(grep -c 'already running' "$TMP/all2.out")" 4
timeout 3 make -s -C "$SRC_DIR" --no-print-directory logs </dev/null >"$TMP/logs.out" 2>&1
grep -q 'warmup-service listening on 127.0.0.1' "$TMP/logs.out" && grep -q 'health-service listening' "$TMP/logs.out"
ok $? "make logs tails the logs of the services"

# --- stop ------------------------------------------------------------------------------
all_pids=$before
mk stop >"$TMP/stop.out"
ok $? "make stop exits 0"
left=""
for p in $all_pids; do alive "$p" && left="$left $p"; done
eq "no process of the stack is left" "$left" ""
eq "... by command line either" "$(stack_procs)" 0
eq "the PID files are gone" "$(ls "$RUN_DIR"/*.pid 2>/dev/null | wc -l)" 0
eq "make stop reports the 4 parts stopped" "$(grep -c ' stopped$' "$TMP/stop.out")" 4
check "warmup-service logged its clean stop" -- grep -q ' stopped$' "$RUN_DIR/warmup-service.log"
check "health-service logged its clean stop" -- grep -q ' stopped$' "$RUN_DIR/health-service.log"
check "no sanitizer report in the service logs" -- \
  bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$RUN_DIR/warmup-service.log' '$RUN_DIR/health-service.log'"
mk stop >"$TMP/stop2.out"
eq "make stop again: nothing to stop" "$? $(grep -c ' stopped$' "$TMP/stop2.out")" "0 0"
finish
