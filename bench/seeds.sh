#!/bin/bash
# seeds.sh - one full check round over N tracked copies (default 100,000)
# spread over M seed mailboxes (default 1,000) of a local Dovecot on the
# same cores (issue 18's goal: <= 60 s), side by side with another build's
# loop on the same data (REF_BUILD_DIR, e.g. the build before issue 18,
# where each mailbox is the one seed of its own domain in
# FEEDBACK_LOOPS_FILE).
#
# Data: mailbox k (user seedKKKK@gmail.test in Dovecot) receives the copies
# to seedKKKK@dKKKK.test: N / M each, 90 % in INBOX and 10 % in Junk,
# written straight into the Maildirs (Dovecot indexes them on first
# access, inside the timed round); the health store is filled with the
# same copies by the sqlite3 shell (a store health-service made, every
# migration). This build reads them through SEED_MAILBOXES_FILE (one
# entry per address, FEEDBACK_LOOPS_FILE {"default": null}); the reference
# through one FEEDBACK_LOOPS_FILE "imap" entry per domain dKKKK.test. Plain
# IMAP on loopback (tls none): the figures are the loops', not TLS's.
#
# Timed: from health-service's start to /mail_stats showing every copy
# placed (delivered + spam = N). IMAP commands: counted by Dovecot itself
# (its imap_command_finished events, `doveadm stats dump`: post-login
# commands, the same for both builds) and, for a build that has it, by
# health_imap_commands_total (every command, login included).
#   BUILD_DIR=/tmp/rel-new REF_BUILD_DIR=/tmp/rel-old N=100000 M=1000 bench/seeds.sh
. "$(dirname "$0")/common.sh"
. "$ROOT/tests/integration/dovecot.sh"
need sqlite3 dovecot doveadm
need_bins health
: "${N:=100000}" "${M:=1000}" "${REF_BUILD_DIR:=}" "${WORKERS:=4}" "${MAXCONN:=100}"
PER=$((N / M))
[ $((PER * M)) = "$N" ] || die "N must be a multiple of M"
echo "# $(machine_line)"

DC=$BTMP/dovecot DP=$(freeport) DPS=$(freeport)
mkdir -p "$BTMP/certs"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout "$BTMP/certs/server.key" \
  -out "$BTMP/certs/server.pem" >/dev/null 2>&1 || die "openssl"
# Dovecot counts the commands it finished (its own metrics, doveadm stats
# dump); sessions share imap processes (logins ~2.5 ms instead of ~25 ms)
DC_NUSERS=$M DC_USER_FMT='seed%04d@gmail.test' DC_IMAP_CLIENTS=10 DC_EXTRA_CONF='metric imap_command {
  filter = event=imap_command_finished
}' start_dovecot "$DC" "$DP" "$DPS" "$BTMP/certs" || die "Dovecot did not start"
printf 'password\n' >"$BTMP/seed.pw"
chmod 600 "$BTMP/seed.pw"

# the Maildirs: N messages, PER per mailbox, the last tenth of each in Junk
t0=$(now_ms)
owner=$(stat -c %u:%g "$DC/home/seed0001@gmail.test/Maildir")
$PY - "$DC/home" "$M" "$PER" <<'PY' || die "Maildir fill"
import os, sys, time
home, m, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time())
for k in range(1, m + 1):
    md = f"{home}/seed{k:04d}@gmail.test/Maildir"
    for sub in ("new", "cur", "tmp", ".Junk/new", ".Junk/cur", ".Junk/tmp"):
        os.makedirs(f"{md}/{sub}", exist_ok=True)
    open(f"{md}/.Junk/maildirfolder", "a").close()
    for j in range(per):
        i = (k - 1) * per + j
        folder = md + ("/.Junk" if j >= per - max(1, per // 10) else "")
        mid = f"<email-1.{i:016x}@b.test>"
        with open(f"{folder}/new/{now}.M{i}P1.bench", "w") as f:
            f.write(f"From: news@acme.test\r\nTo: seed{k:04d}@d{k:04d}.test\r\n"
                    f"Subject: bench {i}\r\nMessage-ID: {mid}\r\n\r\nHello\r\n")
PY
[ "$(id -u)" = 0 ] && chown -R "$owner" "$DC/home"
note "Maildirs: $N messages in $M mailboxes in $(fmt_s $(($(now_ms) - t0))) s"

# fill DB - the same copies in a health store health-service made
fill() {
  sqlite3 "$1" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $N)
INSERT INTO copies(message_id, mid_hash, email_id, broadcast_id, recipient, domain, smtp_client, sent_at)
SELECT printf('<email-1.%016x@b.test>', i), NULL, 1, '<email-1@b.test>',
  printf('seed%04d@d%04d.test', i / $PER + 1, i / $PER + 1), printf('d%04d.test', i / $PER + 1),
  'custom', $(now_ms) - 3600000
FROM n;
INSERT INTO copy_batches SELECT min(rowid), max(rowid), min(sent_at), max(sent_at) FROM copies;
INSERT INTO email_stats(email_id, broadcast_id, tracked, first_sent_at)
  SELECT 1, '<email-1@b.test>', count(*), min(sent_at) FROM copies;
INSERT INTO domains(domain, first_seen, last_seen, tracked)
  SELECT domain, '2026-12-05T00:00:00Z', '2026-12-05T00:00:00Z', count(*) FROM copies GROUP BY domain;
COMMIT;
SQL
}

# imap_json USER - plain IMAP settings for a Dovecot user
imap_json() { printf '"host":"127.0.0.1","port":%s,"tls":"none","user":"%s","password_file":"%s","timeout_ms":30000' \
  "$DP" "$1" "$BTMP/seed.pw"; }
$PY - "$M" "$DP" "$BTMP/seed.pw" "$BTMP" <<'PY'
import json, sys
m, port, pw, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
imap = lambda k: {"host": "127.0.0.1", "port": port, "tls": "none", "user": f"seed{k:04d}@gmail.test",
                  "password_file": pw, "timeout_ms": 30000}
json.dump([{"address": f"seed{k:04d}@d{k:04d}.test", "imap": imap(k)} for k in range(1, m + 1)],
          open(f"{out}/seeds.json", "w"))
loops = {f"d{k:04d}.test": dict(loop="imap", **imap(k)) for k in range(1, m + 1)}
loops["default"] = {"loop": "mock"}
json.dump(loops, open(f"{out}/loops-ref.json", "w"))
json.dump({"default": None}, open(f"{out}/loops-new.json", "w"))
PY

# dovecot_commands - post-login IMAP commands Dovecot has finished so far
dovecot_commands() {
  doveadm -c "$DC/dovecot.conf" -f flow stats dump 2>/dev/null |
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^count=/) { sub(/^count=/, "", $i); s += $i } } END { print s + 0 }'
}

# run LABEL BIN VARS... - one health-service on a fresh copy of the data;
# prints the round's figures
run() {
  local label=$1 bin=$2 name hp t0 ms placed c0 c1 ours
  shift 2
  name=h$label
  hp=$(freeport)
  HEALTH_BIN=$bin start_health "$name" "$hp" CHECK_INTERVAL=86400 LOG_LEVEL=info
  stop_named "$name"
  fill "$BTMP/$name/health.db" || die "store fill"
  # Dovecot's index files go: each build indexes the Maildirs afresh
  find "$DC/home" -name 'dovecot*' -type f -delete
  c0=$(dovecot_commands)
  t0=$(now_ms)
  HEALTH_BIN=$bin start_health "$name" "$hp" CHECK_INTERVAL=86400 LOG_LEVEL=info "$@"
  placed=0
  local pid
  eval "pid=\$${name}_PID"
  while [ "$placed" != "$N" ] && [ $(($(now_ms) - t0)) -lt 1800000 ]; do
    alive "$pid" || { tail -3 "$BTMP/$name/out.log" >&2; die "$label: health-service died (log above)"; }
    sleep 0.5
    placed=$(curl -s "http://127.0.0.1:$hp/mail_stats?email_id=1" | $PY -c 'import json,sys; j=json.load(sys.stdin); print(j["delivered"] + j["spam"])' 2>/dev/null)
  done
  ms=$(($(now_ms) - t0))
  [ "$placed" = "$N" ] || die "$label: only $placed of $N copies placed after 30 minutes"
  c1=$(dovecot_commands)
  ours=$(metric "http://127.0.0.1:$hp" health_imap_commands_total)
  stats=$(curl -s "http://127.0.0.1:$hp/mail_stats?email_id=1" | jq -c '{delivered, spam}')
  stop_named "$name"
  [ "$label" = this ] && summary "seeds round N=$N M=$M" "$(fmt_s "$ms") s, $(fmt_ratio $((c1 - c0)) "$N") commands/copy" \
    "<= 60 s for 100,000 copies in 1,000 mailboxes" "$(verdict "$ms <= 60000")"
  printf '%-10s N=%d M=%d round %8s s  %8s copies/s  dovecot post-login commands %8d (%s/copy)  ours %s  %s\n' \
    "$label" "$N" "$M" "$(fmt_s "$ms")" "$(fmt_rate "$N" "$ms")" $((c1 - c0)) \
    "$(fmt_ratio $((c1 - c0)) "$N")" "${ours:-n/a}${ours:+ ($(fmt_ratio "$ours" "$N")/copy)}" "$stats"
}

run this "$HEALTH_BIN" SEED_MAILBOXES_FILE="$BTMP/seeds.json" FEEDBACK_LOOPS_FILE="$BTMP/loops-new.json" \
  CHECK_WORKERS="$WORKERS" IMAP_MAX_CONNECTIONS="$MAXCONN"
if [ -n "$REF_BUILD_DIR" ]; then
  # the Maildirs as they were: the reference reads the same (new/ vs cur/
  # makes no difference to a read-only EXAMINE)
  run ref "$REF_BUILD_DIR/health-service/health-service" FEEDBACK_LOOPS_FILE="$BTMP/loops-ref.json"
fi
stop_dovecot
