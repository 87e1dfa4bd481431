#!/bin/bash
# test_placement.sh - placement per sending identity and provider (DESIGN
# 9.3), end to end against real servers (TAP): kafka-dev-broker, the
# health service and a Dovecot with two seed mailboxes (read over STARTTLS,
# verified against the test CA): gmail.test's copies are checked in
# seed1@gmail.test, yahoo.test's in seed2@gmail.test (one mailbox per
# domain: the IMAP loop searches every copy of its domain there).
# THROTTLES_FILE makes the providers "gmail" and "yahoo". The copies come
# as email.sent / email.failed events (with "identity") produced with kcat:
#   news@acme.test  -> gmail: INBOX, INBOX, Junk (+ one sent 2 days ago,
#                      INBOX: outside FEEDBACK_WINDOW)
#   news@acme.test  -> yahoo: INBOX, never placed
#   promo@acme.test -> gmail: Junk, Junk
#   promo@acme.test -> yahoo: INBOX, and one dead-lettered (email.failed)
#   no identity     -> gmail: INBOX
# all sent 200 s before the test runs.
#
# Proves: placement.summary events read back from feedback-events (kcat)
# with the exact fields, key the identity: after start-up a summary per pair
# of what is known (zeros; promo/yahoo its dead letter); with Dovecot stopped
# while the messages are put into the Maildirs, and started again, exactly
# one new summary per pair with the exact counts, none for copies without an
# identity or outside the window; more rounds publish nothing; found_at is
# set by the first round that finds a copy and later rounds do not move it;
# GET /providers has the exact counts and rates, time to inbox percentiles
# between 200 and 300 s and the cumulative histogram; the Prometheus
# histogram health_time_to_inbox_seconds{provider} counted each copy once
# (promtool-clean), health_provider_copies as /providers; SIGTERM exits 0
# with no sanitizer report.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
. "$(dirname "$0")/dovecot.sh"

for b in "$BROKER_BIN" "$HEALTH_BIN"; do
  [ -x "$b" ] || { echo "Bail out! $b is missing (build first)"; exit 1; }
done
for c in dovecot doveadm kcat openssl sqlite3 promtool; do
  command -v "$c" >/dev/null || { echo "Bail out! $c is not installed"; exit 1; }
done

# --- servers -------------------------------------------------------------------
start_broker "$TMP/broker"
ok $? "kafka-dev-broker starts (email-events, emailId-events, feedback-events)" || { finish; exit 1; }
gen_certs "$TMP/certs" >/dev/null 2>&1
DC=$TMP/dovecot DP=$(freeport) DPS=$(freeport)
start_dovecot "$DC" "$DP" "$DPS" "$TMP/certs"
ok $? "Dovecot starts (STARTTLS on $DP)" || { finish; exit 1; }

printf 'password\n' >"$TMP/seed.pw"
chmod 600 "$TMP/seed.pw"
cat >"$TMP/loops.json" <<JSON
{"gmail.test": {"loop": "imap", "host": "localhost", "port": $DP, "tls": "starttls",
                "user": "seed1@gmail.test", "password_file": "$TMP/seed.pw",
                "ca_file": "$TMP/certs/ca.pem", "timeout_ms": 5000},
 "yahoo.test": {"loop": "imap", "host": "localhost", "port": $DP, "tls": "starttls",
                "user": "seed2@gmail.test", "password_file": "$TMP/seed.pw",
                "ca_file": "$TMP/certs/ca.pem", "timeout_ms": 5000}}
JSON
cat >"$TMP/throttles.json" <<'JSON'
[{"provider": "gmail", "domains": ["gmail.test"], "per_minute": 600},
 {"provider": "yahoo", "domains": ["yahoo.test"]}]
JSON
HP=$(freeport)
H=http://127.0.0.1:$HP
start_health health "$HP" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json" \
  THROTTLES_FILE="$TMP/throttles.json" FEEDBACK_WINDOW=86400
ok $? "health-service starts (two imap loops, THROTTLES_FILE, FEEDBACK_WINDOW)" || { finish; exit 1; }

# --- the copies ------------------------------------------------------------------
# copies.tsv: Message-ID, recipient, identity (- none), kind (sent|failed), seed mailbox, folder
# (- not placed), age (s)
cat >"$TMP/copies.tsv" <<'TSV'
<email-1.0000000000000001@w.test>	a1@gmail.test	news@acme.test	sent	seed1@gmail.test	INBOX	200
<email-1.0000000000000002@w.test>	a2@gmail.test	news@acme.test	sent	seed1@gmail.test	INBOX	200
<email-1.0000000000000003@w.test>	a3@gmail.test	news@acme.test	sent	seed1@gmail.test	Junk	200
<email-1.0000000000000004@w.test>	b1@yahoo.test	news@acme.test	sent	seed2@gmail.test	INBOX	200
<email-1.0000000000000005@w.test>	b2@yahoo.test	news@acme.test	sent	seed2@gmail.test	-	200
<email-2.0000000000000006@w.test>	a4@gmail.test	promo@acme.test	sent	seed1@gmail.test	Junk	200
<email-2.0000000000000007@w.test>	a5@gmail.test	promo@acme.test	sent	seed1@gmail.test	Junk	200
<email-2.0000000000000008@w.test>	b3@yahoo.test	promo@acme.test	sent	seed2@gmail.test	INBOX	200
<email-2.0000000000000009@w.test>	b4@yahoo.test	promo@acme.test	failed	seed2@gmail.test	-	200
<email-3.000000000000000a@w.test>	a6@gmail.test	-	sent	seed1@gmail.test	INBOX	200
<email-4.000000000000000b@w.test>	a7@gmail.test	news@acme.test	sent	seed1@gmail.test	INBOX	172800
TSV
$PY - "$TMP/copies.tsv" >"$TMP/events.txt" <<'PY'
import json, sys, time
now = time.time()
for line in open(sys.argv[1]):
    mid, rcpt, ident, kind, _, _, age = line.rstrip("\n").split("\t")
    eid = int(mid.split("-")[1].split(".")[0])
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - int(age))) + ".000Z"
    ev = {"v": 1, "type": "email." + kind, "message_id": mid, "broadcast_id": f"<email-{eid}@w.test>",
          "email_id": eid, "recipient": rcpt, "domain": rcpt.split("@")[1], "smtp_client": "custom"}
    if ident != "-":
        ev["identity"] = ident
    ev["sent_at"] = at
    if kind == "failed":
        ev["smtp_reply"] = "550 5.1.1 no such user"
    print(mid + "\t" + json.dumps(ev, separators=(",", ":")))
PY
kcat -P -b "$BROKERS" -t email-events -K $'\t' <"$TMP/events.txt" 2>"$TMP/kcat.err"
ok $? "11 copy events produced (10 email.sent, 1 email.failed; 9 with an identity)"
tracked() { [ "$(jget "$(curl -s "$H/mail_stats?email_id=$1")" 'j["tracked"]' 2>/dev/null)" = "$2" ]; }
wait_for 60 tracked 1 5 && wait_for 10 tracked 2 4 && wait_for 10 tracked 3 1 && wait_for 10 tracked 4 1
ok $? "health tracks the 11 copies"

# --- the summaries ---------------------------------------------------------------
events() { kcat -C -b "$BROKERS" -t feedback-events -o beginning -e -q -f '%k\t%s\n' 2>/dev/null; }
cat >"$TMP/sum.py" <<'PY'
import json, re, sys
# sum.py exact EVENTS FROM STATE: after the first FROM[pair] summaries of each pair (FROM: what
# count printed) exactly one more per pair, with STATE's counts; last EVENTS STATE: each pair's
# last summary has STATE's counts; count EVENTS: the summaries per pair, as JSON. Every summary:
# fields in the contract's order, window_s, at, key the identity. Kafka keeps the order within a
# partition (one identity's summaries), not across them: only per pair is there an order.
STATES = {
  "start": {("news@acme.test", "gmail"): [0, 0, 0, 0, 0], ("news@acme.test", "yahoo"): [0, 0, 0, 0, 0],
            ("promo@acme.test", "gmail"): [0, 0, 0, 0, 0], ("promo@acme.test", "yahoo"): [1, 0, 0, 1, 0]},
  "placed": {("news@acme.test", "gmail"): [3, 2, 1, 0, 0], ("news@acme.test", "yahoo"): [1, 1, 0, 0, 0],
             ("promo@acme.test", "gmail"): [2, 0, 2, 0, 0], ("promo@acme.test", "yahoo"): [2, 1, 0, 1, 0]},
}
KEYS = ["v", "type", "identity", "provider", "window_s", "checked", "inbox", "spam", "bounced", "complained", "at"]
def load(path):
    out = []
    for line in open(path):
        key, val = line.rstrip("\n").split("\t", 1)
        j = json.loads(val)
        if j.get("type") == "placement.summary":
            out.append((key, j))
    return out
def bad_shape(key, j):
    b = []
    if list(j) != KEYS: b.append(f"fields {list(j)}")
    if j.get("v") != 1 or j.get("window_s") != 86400: b.append(f"v/window_s {j}")
    if key != j.get("identity"): b.append(f"key {key!r} for {j.get('identity')}")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", j.get("at", "")): b.append(f"at {j.get('at')!r}")
    return b
def counts(j):
    return [j[k] for k in ("checked", "inbox", "spam", "bounced", "complained")]
cmd, path = sys.argv[1], sys.argv[2]
ev = load(path)
bad = [f"{j.get('identity')}/{j.get('provider')}: {x}" for k, j in ev for x in bad_shape(k, j)]
if cmd == "count":
    n = {}
    for k, j in ev:
        p = j["identity"] + "/" + j["provider"]
        n[p] = n.get(p, 0) + 1
    print(json.dumps(n, sort_keys=True)); sys.exit(0)
if cmd == "last":
    want = STATES[sys.argv[3]]
    last = {}
    for k, j in ev:
        last[(j["identity"], j["provider"])] = counts(j)
    if last != want: bad.append(f"last {last} want {want}")
else:  # exact FROM STATE
    want, skip = STATES[sys.argv[4]], json.loads(sys.argv[3])
    got, seen = {}, {}
    for k, j in ev:
        p = (j["identity"], j["provider"])
        seen[p] = seen.get(p, 0) + 1
        if seen[p] > skip.get(p[0] + "/" + p[1], 0):
            got.setdefault(p, []).append(counts(j))
    exp = {p: [c] for p, c in want.items()}
    if got != exp: bad.append(f"got {got} want {exp}")
print("\n".join(bad) if bad else "ok")
PY
# sums CMD [ARGS] - sum.py CMD on the events read back now
sums() { local cmd=$1; shift; events >"$TMP/ev.tsv"; $PY "$TMP/sum.py" "$cmd" "$TMP/ev.tsv" "$@" 2>&1; }
last_is() { [ "$(sums last "$1" | sed -n 1p)" = ok ]; }

wait_for 60 last_is start
ok $? "after start-up every (identity, provider) with copies has a summary of what is known" ||
  sums last start | sed 's/^/#   /'
eq "the start-up summaries: fields in order, key the identity, no pair without an identity" \
  "$(sums last start)" ok
# rounds DOMAIN K - wait until DOMAIN's last_round_at changed K times
domj() { curl -s "$H/domains" | $PY -c 'import json,sys; print(json.dumps(next((d for d in json.load(sys.stdin) if d["domain"] == sys.argv[1]), None)))' "$1" 2>/dev/null; }
round_changed() { [ "$(jget "$(domj "$1")" 'j["last_round_at"]' 2>/dev/null)" != "$2" ]; }
rounds() { local d=$1 k=$2 last i
  for ((i = 0; i < k; i++)); do
    last=$(jget "$(domj "$d")" 'j["last_round_at"]' 2>/dev/null)
    wait_for 20 round_changed "$d" "$last" || return 1
  done; }
NA=$(sums count)
rounds gmail.test 2 && rounds yahoo.test 2
ok $? "two more rounds of each domain"
N0=$(sums count)
eq "unchanged rounds publish nothing new" "$N0" "$NA"

# --- the messages into the seed mailboxes, Dovecot stopped meanwhile -------------------
stop_dovecot
ok $? "Dovecot stopped"
has_error() { [ "$(jget "$(domj "$1")" 'j["last_error"] is not None' 2>/dev/null)" = True ]; }
wait_for 20 has_error gmail.test && wait_for 20 has_error yahoo.test
ok $? "a round of each domain failed (results unknown: nothing changes)"
placed=0
while IFS=$'\t' read -r mid rcpt ident kind box folder age; do
  [ "$folder" = - ] && continue
  printf 'From: %s\r\nTo: %s\r\nSubject: warmup\r\nDate: %s\r\nMessage-ID: %s\r\n\r\nHello.\r\n' \
    "${ident/-/sender@acme.test}" "$rcpt" "$(date -R)" "$mid" |
    put_message "$DC" "$box" "$folder" 0 >/dev/null && placed=$((placed + 1))
done <"$TMP/copies.tsv"
eq "9 messages put into the two Maildirs (6 INBOX, 3 Junk)" "$placed" 9
eq "no summary while Dovecot is down" "$(sums count)" "$N0"
start_dovecot "$DC" "$DP" "$DPS" "$TMP/certs"
ok $? "Dovecot started again (same Maildirs and ports)" || { finish; exit 1; }
wait_for 60 last_is placed
ok $? "each pair's last summary has the placed counts" || sums last placed | sed 's/^/#   /'
eq "exactly one new summary per pair, with the exact counts (the old copy and the one without an identity in none)" \
  "$(sums exact "$N0" placed)" ok
N1=$(sums count)

# --- found_at set once, nothing more published -------------------------------------
found() { sqlite3 "$TMP/health/health.db" \
  "SELECT message_id, found_at, sent_at, placement FROM copies WHERE found_at IS NOT NULL ORDER BY message_id"; }
F1=$(found)
eq "found_at set for the 9 copies found in a folder" "$(printf '%s\n' "$F1" | grep -c .)" 9
hist_count() { curl -s "$H/metrics" | awk -v k="health_time_to_inbox_seconds_count{provider=\"$1\"}" '$1 == k {print $2}'; }
H1="$(hist_count gmail) $(hist_count yahoo)"
rounds gmail.test 3 && rounds yahoo.test 3
ok $? "three more rounds of each domain"
eq "later rounds do not move found_at" "$(found)" "$F1"
eq "unchanged rounds publish nothing new" "$(sums count)" "$N1"
eq "health_time_to_inbox_seconds_count: each copy first found in the inbox once (gmail 4: the old copy too, yahoo 2)" \
  "$(hist_count gmail) $(hist_count yahoo)" "4 2"
eq "... not again in later rounds" "$(hist_count gmail) $(hist_count yahoo)" "$H1"

# --- GET /providers -------------------------------------------------------------------
P=$(curl -s "$H/providers")
echo "# /providers: $P"
eq "/providers: the two providers, counts, rates (the old copy outside the window, the one without an identity in)" \
  "$(jget "$P" '{p: [v[k] for k in ("checked", "inbox", "spam", "bounced", "complained", "inbox_rate", "spam_rate")] for p, v in sorted(j.items())}')" \
  '{"gmail": [6, 3, 3, 0, 0, 0.5, 0.5], "yahoo": [3, 2, 0, 1, 0, 0.6667, 0]}'
eq "/providers: fields in the contract's order" \
  "$(jget "$P" 'list(j["gmail"])')" \
  '["checked", "inbox", "spam", "bounced", "complained", "inbox_rate", "spam_rate", "time_to_inbox_s", "histogram"]'
eq "/providers: time to inbox p50 <= p90 <= p99, between 200 and 300 s (sent 200 s before the test)" \
  "$(jget "$P" '[200 <= v["time_to_inbox_s"]["p50"] <= v["time_to_inbox_s"]["p90"] <= v["time_to_inbox_s"]["p99"] <= 300 for v in j.values()]')" \
  '[true, true]'
eq "/providers: cumulative histogram, fixed buckets, +Inf = the copies found in the inbox" \
  "$(jget "$P" '{p: [[b["le"], b["count"]] for b in v["histogram"]] for p, v in sorted(j.items())}')" \
  "$($PY -c 'import json
le = [10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, "+Inf"]
print(json.dumps({p: [[b, 0 if b != "+Inf" and b < 300 else n] for b in le] for p, n in (("gmail", 3), ("yahoo", 2))}))')"

# --- Prometheus ---------------------------------------------------------------------------
M=$(curl -s "$H/metrics")
printf '%s\n' "$M" | promtool check metrics >"$TMP/promtool.out" 2>&1
ok $? "promtool check metrics is clean" || sed 's/^/#   /' "$TMP/promtool.out"
metric() { printf '%s\n' "$M" | awk -v k="$1" '$1 == k {print $2}'; }
eq "health_time_to_inbox_seconds buckets: none at or under 120 s, the recent ones at 300 s" \
  "$(metric 'health_time_to_inbox_seconds_bucket{provider="gmail",le="120"}') $(metric 'health_time_to_inbox_seconds_bucket{provider="gmail",le="300"}') $(metric 'health_time_to_inbox_seconds_bucket{provider="yahoo",le="+Inf"}')" \
  "0 3 2"
eq "health_provider_copies as /providers (gmail checked inbox spam, yahoo bounced)" \
  "$(metric 'health_provider_copies{provider="gmail",state="checked"}') $(metric 'health_provider_copies{provider="gmail",state="inbox"}') $(metric 'health_provider_copies{provider="gmail",state="spam"}') $(metric 'health_provider_copies{provider="yahoo",state="bounced"}')" \
  "6 3 3 1"
eq "health_placement_summaries_total{result=\"published\"}: every summary read back" \
  "$(metric 'health_placement_summaries_total{result="published"}')" "$(jget "$N1" 'sum(j.values())')"

# --- shutdown -------------------------------------------------------------------------------
stop_named health
eq "health exits 0 on SIGTERM" "$STOP_RC" 0
check "no sanitizer report (health)" -- sanitizer_clean health
stop_dovecot
ok $? "Dovecot stopped"
stop_pid "$BROKER_PID"
left=""
for p in $PIDS; do alive "$p" && left="$left $p"; done
eq "every process started by the test is stopped" "$left" ""
finish
