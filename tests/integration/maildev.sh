# shellcheck shell=bash
# maildev.sh - helpers for tests that need maildev (SMTP catcher with a REST
# API). Source after lib.sh. maildev 3.x is installed by
# deploy/install-maildev.sh into .cache/maildev (part of `make deps`).
#
#   maildev_available           0 when node and maildev are installed
#   start_maildev SMTP WEB DIR  start it, mails kept in DIR; sets MAILDEV_PID,
#                               MAILDEV_API (http://127.0.0.1:WEB/api)
#   maildev_emails              GET /api/email (JSON list) on stdout
#   maildev_count               number of emails caught
#   maildev_wait_count N [S]    wait up to S seconds (10) for >= N emails
#   maildev_id MESSAGE_ID       the maildev id of the email with that Message-ID
#   maildev_email ID            GET /api/email/ID (parsed email, JSON)
#   maildev_source ID           GET /api/email/ID/source (raw message)
#   maildev_clear               DELETE /api/email/all
#   stop_maildev                SIGTERM and wait
MAILDEV_JS="${MAILDEV_JS:-$SRC_DIR/.cache/maildev/node_modules/maildev/dist/bin/maildev.js}"

maildev_available() { [ -f "$MAILDEV_JS" ] && command -v node >/dev/null 2>&1; }

# maildev_ready SMTP WEB - REST health check answers and the SMTP port accepts
maildev_ready() {
  curl -fsS -m 2 "http://127.0.0.1:$2/api/healthz" >/dev/null 2>&1 &&
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_maildev() {
  local smtp=$1 web=$2 dir=$3 i
  mkdir -p "$dir"
  # the log lives beside DIR: maildev loads every file in its mail directory
  MAILDEV_LOG="${dir%/}.log"
  ( exec node "$MAILDEV_JS" --ip 127.0.0.1 --web-ip 127.0.0.1 -s "$smtp" -w "$web" \
      --mail-directory "$dir" ) >"$MAILDEV_LOG" 2>&1 </dev/null &
  MAILDEV_PID=$!; track $MAILDEV_PID
  MAILDEV_API="http://127.0.0.1:$web/api"
  for ((i = 0; i < 60 * 20; i++)); do   # start takes 1.5-2 s; allow 60 s on a loaded machine
    maildev_ready "$smtp" "$web" && return 0
    alive "$MAILDEV_PID" || break
    sleep 0.05
  done
  echo "# maildev did not start:"; sed 's/^/#   /' "$MAILDEV_LOG" | tail -20
  return 1
}

maildev_emails() { curl -fsS -m 10 "$MAILDEV_API/email"; }
maildev_count() { maildev_emails | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
maildev_wait_count() {
  local n=$1 t=${2:-10} i c
  for ((i = 0; i < t * 20; i++)); do
    c=$(maildev_count 2>/dev/null) && [ "${c:-0}" -ge "$n" ] && return 0
    sleep 0.05
  done
  return 1
}
maildev_id() {
  curl -fsS -m 10 -G "$MAILDEV_API/email" --data-urlencode "headers.message-id=$1" |
    $PY -c 'import json,sys; l=json.load(sys.stdin); print(l[0]["id"]) if l else sys.exit(1)'
}
maildev_email() { curl -fsS -m 10 "$MAILDEV_API/email/$1"; }
maildev_source() { curl -fsS -m 10 "$MAILDEV_API/email/$1/source"; }
maildev_clear() { curl -fsS -m 10 -X DELETE "$MAILDEV_API/email/all" >/dev/null; }
stop_maildev() { stop_pid "$MAILDEV_PID" 10; }
