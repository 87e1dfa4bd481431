#!/bin/bash
# test_health_imap.sh - the health service with the IMAP FeedbackLoop, end
# to end against real servers (TAP): the warmup service sends through
# Postfix smtp-sink (every message dumped to a file), the health service
# tracks every copy from Kafka (kafka-dev-broker), and the REAL messages
# the sink received are put into a Dovecot seed mailbox (INBOX / Junk, with
# \Seen, \Answered, \Flagged), which the health service reads over STARTTLS
# verified against the test CA.
#
# Proves: /mail_stats per email and per copy shows exactly the placement
# rules of the IMAP loop (inbox -> delivered, Junk -> spam, \Seen ->
# opened, \Seen with \Answered or \Flagged -> read, \Flagged alone is
# nothing, a copy not in the mailbox stays pending); /domains shows the
# imap loop, its checked count and no error; checking marks nothing read;
# Dovecot stopped mid-run -> /domains last_error for that domain only, the
# counts stay what they were (unknown never erases what was known), a
# copy sent meanwhile is tracked but not checked, the mock-loop domain
# keeps being checked and progressing; Dovecot restarted on the same
# Maildir and ports -> a later round succeeds (last_error null again) and
# the counts are unchanged; a second health-service (own DB, own consumer
# group) with an unrelated CA gets a last_error naming the certificate,
# never logs in to Dovecot and gives no copy of that domain a placement;
# every service exits 0 on SIGTERM with no sanitizer report.
#
# One seed mailbox per domain: the IMAP loop logs in as the one "user" of
# the domain's FEEDBACK_LOOPS_FILE entry and searches every tracked copy
# of that domain there, whatever its recipient (loop_imap.c never looks at
# fl_copy.recipient). dovecot.sh always creates seed1@gmail.test and
# seed2@gmail.test (same domain), so only seed1@gmail.test is registered
# for gmail.test: a copy for seed2 would be searched in seed1's mailbox.
# The second domain, other.test, has no entry in the loops file and is
# served by the built-in "default" mock loop (0.8 / 0.1 / 0.5 / 0.2).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"
. "$(dirname "$0")/dovecot.sh"

for b in "$BROKER_BIN" "$WARMUP_BIN" "$HEALTH_BIN"; do
  [ -x "$b" ] || { echo "Bail out! $b is missing (build first)"; exit 1; }
done
for c in dovecot doveadm smtp-sink openssl; do
  command -v "$c" >/dev/null || { echo "Bail out! $c is not installed"; exit 1; }
done

SEED=seed1@gmail.test
SD=gmail.test   # the seed domain (imap loop)
OTHER=u1@other.test
OD=other.test   # the other domain (built-in default mock loop)

# sink PORT DIR - smtp-sink dumping every transaction into DIR (as test_send.sh)
sink() { local port=$1 dir=$2; shift 2
  mkdir -p "$dir"; chmod 777 "$dir"
  smtp-sink -u nobody -d "$dir/%M." "$@" "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
  SINK_PID=$!; track $SINK_PID
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; }

# domj URL DOMAIN - that domain's object from URL/domains (null when absent)
domj() { curl -s "$1/domains" | $PY -c 'import json,sys; print(json.dumps(next((d for d in json.load(sys.stdin) if d["domain"] == sys.argv[1]), None)))' "$2" 2>/dev/null; }
# dget URL DOMAIN EXPR - a python expression on that domain's object j
dget() { jget "$(domj "$1" "$2")" "$3" 2>/dev/null; }
# rounds URL DOMAIN K - wait until DOMAIN's last_round_at changed K times
round_changed() { [ "$(dget "$1" "$2" 'j["last_round_at"]')" != "$3" ]; }
rounds() { local u=$1 d=$2 k=$3 last i
  for ((i = 0; i < k; i++)); do
    last=$(dget "$u" "$d" 'j["last_round_at"]')
    wait_for 20 round_changed "$u" "$d" "$last" || return 1
  done; }
# sent_count EID - copies of EID accepted by the sink (warmup progress)
sent_count() { jget "$(curl -s "$W/emails/$1")" 'j["progress"]["sent"]' 2>/dev/null; }
# send N - POST /send (one email to every registered user); prints email_id
send() {
  local r
  r=$(curl -s -X POST -H 'Content-Type: application/json' \
    -d "{\"from\":\"warmup@w.test\",\"from_name\":\"Warmup\",\"subject\":\"Warmup $1 for {{name}}\",\"body\":\"Hello {{name}},\\nthis is warmup message $1.\"}" \
    "$W/send")
  jget "$r" 'j["email_id"]'
}

# --- expectations -----------------------------------------------------------------
# copies.tsv (email_id, recipient, Message-ID, dump file) comes from the
# sink's dumps; plan.tsv (email_id folder seen flags) says where each seed
# copy was put ("-" folder: nowhere). MODE "placed" expects the plan,
# "unplaced" expects every seed copy pending (nothing known about it).
cat >"$TMP/st.py" <<'PY'
import json, sys, urllib.parse, urllib.request
TMP = sys.argv[1]
FIELDS = ("tracked", "delivered", "spam", "opened", "read", "bounced", "pending")
MOCK = (0.8, 0.1, 0.5, 0.2)  # the built-in "default" mock loop (loops.c)
SEED_DOMAIN = "gmail.test"
copies = [l.rstrip("\n").split("\t") for l in open(TMP + "/copies.tsv") if l.strip()]
plan = {}
try:
    for l in open(TMP + "/plan.tsv"):
        if l.strip():
            e, folder, seen, flags = l.split()
            plan[int(e)] = (folder, seen == "1", "" if flags == "-" else flags)
except FileNotFoundError:
    pass

def fnv(s):
    h = 1469598103934665603
    for b in s.encode():
        h ^= b; h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h

def mock(mid):  # after >= 3 rounds
    d, sp, op, rd = MOCK; h = fnv(mid)
    u0, u16, u32 = (h & 0xffff) / 65536, ((h >> 16) & 0xffff) / 65536, ((h >> 32) & 0xffff) / 65536
    place = "inbox" if u0 < d else "spam" if u0 < d + sp else "none"
    opened = place == "inbox" and u16 < op
    return place, opened, opened and u32 < rd

def seed(eid, mode):  # the IMAP loop's placement rules
    p = plan.get(eid)
    if mode == "unplaced" or not p or p[0] == "-":
        return "none", False, False
    folder, seen, flags = p
    return ("inbox" if folder == "INBOX" else "spam"), seen, seen and ("R" in flags or "F" in flags)

def want_copy(c, mode):
    eid, rcpt, mid = int(c[0]), c[1], c[2]
    p, o, r = seed(eid, mode) if rcpt.split("@")[1] == SEED_DOMAIN else mock(mid)
    return [1, int(p == "inbox"), int(p == "spam"), int(o), int(r), 0, int(p == "none")]

def want_email(eid, mode):
    t = [0] * 7
    for c in copies:
        if int(c[0]) == eid:
            t = [a + b for a, b in zip(t, want_copy(c, mode))]
    return t

def fetch(url, key, val):
    try:
        with urllib.request.urlopen(url + "/mail_stats?" + urllib.parse.urlencode({key: val}), timeout=5) as r:
            return json.load(r)
    except Exception as e:
        return {"error": str(e)}

def got(j, copy=False):
    if "tracked" not in j:
        return j
    v = [j.get(k) for k in FIELDS]
    return v + [j.get("recipient"), j.get("domain")] if copy else v

cmd = sys.argv[2]
if cmd == "want-email":    # EID MODE
    print(json.dumps(want_email(int(sys.argv[3]), sys.argv[4])))
elif cmd == "got-email":   # EID URL
    print(json.dumps(got(fetch(sys.argv[4], "email_id", sys.argv[3]))))
elif cmd == "want-copy":   # MID MODE
    c = [c for c in copies if c[2] == sys.argv[3]][0]
    print(json.dumps(want_copy(c, sys.argv[4]) + [c[1], c[1].split("@")[1]]))
elif cmd == "got-copy":    # MID URL
    print(json.dumps(got(fetch(sys.argv[4], "mail_id", sys.argv[3]), True)))
elif cmd == "checked-copy":  # MID URL: was the copy ever checked
    print(json.dumps(fetch(sys.argv[4], "mail_id", sys.argv[3]).get("checked_at") is not None))
elif cmd == "match":       # URL MODE: every email and every copy as expected
    url, mode = sys.argv[3], sys.argv[4]
    for eid in sorted({int(c[0]) for c in copies}):
        g = got(fetch(url, "email_id", eid))
        if g != want_email(eid, mode):
            sys.exit(f"email {eid}: got {g}, want {want_email(eid, mode)}")
    for c in copies:
        g = got(fetch(url, "mail_id", c[2]))
        if g != want_copy(c, mode):
            sys.exit(f"copy {c[2]}: got {g}, want {want_copy(c, mode)}")
elif cmd == "snapshot":    # URL: every email's and copy's stats, one line each
    url = sys.argv[3]
    for eid in sorted({int(c[0]) for c in copies}):
        print(eid, json.dumps(fetch(url, "email_id", eid)))
    for c in copies:
        print(c[2], json.dumps(fetch(url, "mail_id", c[2])))
PY
st() { $PY "$TMP/st.py" "$TMP" "$@"; }
# match URL MODE - every email and copy as expected (the mismatch in $TMP/match.err)
match() { st match "$1" "$2" 2>"$TMP/match.err"; }
# tracked_all URL N - every email of copies.tsv tracked with N copies
tracked_is() { [ "$(jget "$(curl -s "$1/mail_stats?email_id=$2")" 'j["tracked"]' 2>/dev/null)" = "$3" ]; }

# copies_tsv - email_id, recipient, Message-ID, file of every sink dump
copies_tsv() { $PY - "$TMP/sink" <<'PY'
import os, re, sys
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    rcpts, mid = [], None
    with open(os.path.join(d, name), "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("X-Rcpt-Args: <"):
                rcpts.append(line[14:].split(">")[0])
            elif line.lower().startswith("message-id: ") and mid is None:
                mid = line[12:].strip()
            elif line == "":
                break
    m = re.fullmatch(r"<email-(\d+)\.[0-9a-f]{16}@w\.test>", mid or "")
    if not m or len(rcpts) != 1:
        sys.exit(f"unexpected dump {name}: rcpts={rcpts} message-id={mid}")
    print(f"{m.group(1)}\t{rcpts[0]}\t{mid}\t{os.path.join(d, name)}")
PY
}
# seed_copy EID - the Message-ID of EID's copy for the seed mailbox
seed_copy() { awk -F'\t' -v e="$1" -v r="$SEED" '$1 == e && $2 == r {print $3}' "$TMP/copies.tsv"; }
seed_file() { awk -F'\t' -v e="$1" -v r="$SEED" '$1 == e && $2 == r {print $4}' "$TMP/copies.tsv"; }
# message FILE - the message itself: smtp-sink's X-* envelope lines
# (X-Client-Addr, X-Client-Proto, X-Helo-Args, X-Mail-Args, X-Rcpt-Args)
# dropped from the top; it starts with smtp-sink's Received: trace header
message() { awk 'body || !/^X-[A-Za-z-]+: / {body = 1; print}' "$1"; }

# --- servers -------------------------------------------------------------------
gen_certs "$TMP/certs"
ok $? "test CA, server certificate (localhost, 127.0.0.1) and unrelated CA generated"
CA=$TMP/certs/ca.pem
start_broker "$TMP/broker"
ok $? "kafka-dev-broker starts" || { finish; exit 1; }
DC=$TMP/dovecot
DP=$(freeport)
DPS=$(freeport)
start_dovecot "$DC" "$DP" "$DPS" "$TMP/certs"
ok $? "Dovecot starts (STARTTLS on $DP)" || { finish; exit 1; }
SP=$(freeport)
sink "$SP" "$TMP/sink"
ok $? "smtp-sink starts, dumping every message" || { finish; exit 1; }

printf 'password\n' >"$TMP/seed.pw"
chmod 600 "$TMP/seed.pw"
# loops NAME CA_FILE - a FEEDBACK_LOOPS_FILE: gmail.test -> imap over STARTTLS
loops() {
  cat >"$TMP/$1.json" <<JSON
{"$SD": {"loop": "imap", "host": "localhost", "port": $DP, "tls": "starttls",
         "user": "$SEED", "password_file": "$TMP/seed.pw", "inbox": "INBOX",
         "ca_file": "$2", "timeout_ms": 5000}}
JSON
}
loops loops "$CA"
loops loops-wrongca "$TMP/certs/other-ca.pem"

WP=$(freeport)
HP=$(freeport)
W=http://127.0.0.1:$WP
H=http://127.0.0.1:$HP
start_warmup warmup "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" \
  SMTP_TLS=none MESSAGE_ID_DOMAIN=w.test
ok $? "warmup-service starts (CUSTOM client -> smtp-sink)" || { finish; exit 1; }
start_health health "$HP" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json"
ok $? "health-service starts (gmail.test -> imap over STARTTLS, test CA)" || { finish; exit 1; }

# --- users and emails ----------------------------------------------------------------
r=$(http POST "$W/register" "{\"name\":\"Seed One\",\"email_id\":\"$SEED\"}")
eq "register the seed mailbox $SEED" "${r%% *}" 201
r=$(http POST "$W/register" "{\"name\":\"Other User\",\"email_id\":\"$OTHER\"}")
eq "register $OTHER (mock loop domain)" "${r%% *}" 201

N=9 # emails before the outage; a 10th is sent while Dovecot is down
EIDS=()
for i in $(seq $N); do EIDS+=("$(send "$i")"); done
eq "$N emails accepted" "${#EIDS[@]} $(printf '%s\n' "${EIDS[@]}" | grep -c '^[0-9][0-9]*$')" "$N $N"
all_sent() { local e; for e in "${EIDS[@]}"; do [ "$(sent_count "$e")" = 2 ] || return 1; done; }
wait_for 60 all_sent
ok $? "every email sent to both users (2 copies each)"
all_tracked() { local e; for e in "${EIDS[@]}"; do tracked_is "$H" "$e" 2 || return 1; done; }
wait_for 60 all_tracked
ok $? "health /mail_stats: every email tracked with its 2 copies"

copies_tsv >"$TMP/copies.tsv" 2>"$TMP/copies.err"
rc=$?
eq "the sink dumped $((2 * N)) messages, one recipient and one copy Message-ID each" \
  "$rc $(wc -l <"$TMP/copies.tsv") $(cut -f3 "$TMP/copies.tsv" | sort -u | wc -l)" "0 $((2 * N)) $((2 * N))"
[ -s "$TMP/copies.err" ] && sed 's/^/#   /' "$TMP/copies.err"

# before anything is in the mailbox: every seed copy searched and not found
wait_for 30 match "$H" unplaced
ok $? "empty seed mailbox: every seed copy checked and pending, mock copies as computed" ||
  sed 's/^/#   /' "$TMP/match.err"
eq "/domains $SD before: loop imap, 1 user, $N tracked, $N checked, no error" \
  "$(dget "$H" "$SD" '[j["loop"], j["users"], j["tracked"], j["checked"], j["last_error"]]')" \
  "[\"imap\", 1, $N, $N, null]"

# --- the real messages into the seed mailbox -----------------------------------------
# email index: folder seen flags (F = \Flagged, R = \Answered; seen adds \Seen)
PLAN="
1 INBOX 0 -
2 INBOX 1 -
3 INBOX 1 R
4 INBOX 1 F
5 INBOX 0 F
6 Junk  0 -
7 Junk  1 -
8 Junk  1 F
9 -     0 -
"
: >"$TMP/plan.tsv"
f=$(seed_file "${EIDS[0]}")
m=$(message "$f")
eq "a dump stripped of smtp-sink's X-* lines starts with a real header and keeps the Message-ID" \
  "$(head -1 <<<"$m" | cut -d: -f1) $(grep -c '^X-\(Client\|Helo\|Mail\|Rcpt\)' <<<"$m") $(grep -c "^Message-ID: $(seed_copy "${EIDS[0]}")$" <<<"$m")" \
  "Received 0 1"
placed=0
while read -r i folder seen flags; do
  [ -n "$i" ] || continue
  e=${EIDS[$((i - 1))]}
  printf '%s %s %s %s\n' "$e" "$folder" "$seen" "$flags" >>"$TMP/plan.tsv"
  [ "$folder" = - ] && continue
  [ "$flags" = - ] && flags=
  message "$(seed_file "$e")" | put_message "$DC" "$SEED" "$folder" "$seen" "$flags" >>"$TMP/placed" &&
    placed=$((placed + 1))
done <<<"$PLAN"
eq "8 real messages put into the seed Maildir (5 INBOX, 3 Junk), 1 left out" \
  "$placed $(grep -c . "$TMP/placed")" "8 8"

wait_for 30 match "$H" placed
ok $? "after a round every email and every copy shows exactly the placement rules" ||
  sed 's/^/#   /' "$TMP/match.err"
for e in "${EIDS[@]}"; do
  eq "/mail_stats?email_id=$e [tracked delivered spam opened read bounced pending]" \
    "$(st got-email "$e" "$H")" "$(st want-email "$e" placed)"
done
while read -r e folder seen flags; do
  mid=$(seed_copy "$e")
  eq "/mail_stats?mail_id= seed copy of email $e ($folder seen=$seen flags=$flags)" \
    "$(st got-copy "$mid" "$H")" "$(st want-copy "$mid" placed)"
done <"$TMP/plan.tsv"
eq "seed copies in all: delivered 5, spam 3, opened 5, read 3, pending 1" \
  "$(for e in "${EIDS[@]}"; do st got-copy "$(seed_copy "$e")" "$H"; done |
    $PY -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]; print([sum(x[k] for x in r) for k in (1,2,3,4,6)])')" \
  "[5, 3, 5, 3, 1]"
eq "/domains $SD: loop imap, $N tracked, $N checked, last_round_at set, last_error null" \
  "$(dget "$H" "$SD" '[j["loop"], j["tracked"], j["checked"], j["last_round_at"] is not None, j["last_error"]]')" \
  "[\"imap\", $N, $N, true, null]"
eq "/domains $OD: loop mock, $N tracked, $N checked, last_error null" \
  "$(dget "$H" "$OD" '[j["loop"], j["tracked"], j["checked"], j["last_error"]]')" "[\"mock\", $N, $N, null]"
f=$(dovecot_flags "$DC" "$SEED" INBOX "$(seed_copy "${EIDS[0]}")")
ok "$([[ $f == flags=* && $f != *Seen* ]]; echo $?)" "checking marks nothing read: the unseen INBOX copy still has no \\Seen ($f)"
grep -q "imap loop connected domain=$SD host=localhost port=$DP tls=starttls user=$SEED inbox=\"INBOX\" spam=\"Junk\" spam_from=special-use" "$TMP/health/out.log"
ok $? "health log: connected over STARTTLS, spam folder Junk found by SPECIAL-USE"

# --- Dovecot stopped mid-run -----------------------------------------------------------
st snapshot "$H" >"$TMP/before.snap"
OD_CHECKED_ROUND=$(dget "$H" "$OD" 'j["last_round_at"]')
stop_dovecot
ok $? "Dovecot stopped while the health service holds its connection"
has_error() { [ "$(dget "$1" "$2" 'j["last_error"] is not None')" = True ]; }
wait_for 20 has_error "$H" "$SD"
ok $? "/domains $SD: a round fails and shows a last_error"
err=$(dget "$H" "$SD" 'j["last_error"]')
echo "# last_error: $err"
ok "$([[ $err == *"localhost:$DP"* ]]; echo $?)" "the last_error names the mailbox server (localhost:$DP)"
grep -q "round domain=$SD loop=imap copies=$N failed: .*(results unknown)" "$TMP/health/out.log"
ok $? "health log: the failed round of $SD, results unknown"

# an email sent during the outage: tracked; its mock copy progresses, its seed copy is never checked
E10=$(send 10)
EIDS+=("$E10")
sent2() { [ "$(sent_count "$1")" = 2 ]; }
wait_for 30 sent2 "$E10"
ok $? "email $E10 sent during the outage"
copies_tsv >"$TMP/copies.tsv"
echo "$E10 - 0 -" >>"$TMP/plan.tsv"
eq "its 2 copies dumped too" "$(wc -l <"$TMP/copies.tsv")" "$((2 * N + 2))"
e10_done() { [ "$(st got-email "$E10" "$H")" = "$(st want-email "$E10" placed)" ]; }
wait_for 30 e10_done
ok $? "email $E10 tracked, its $OD copy checked to its final mock answer while $SD is down"
eq "/mail_stats?email_id=$E10" "$(st got-email "$E10" "$H")" "$(st want-email "$E10" placed)"
rounds "$H" "$SD" 2
ok $? "two more rounds of $SD during the outage"
eq "/domains $SD during the outage: still an error, $((N + 1)) tracked, still $N checked" \
  "$(dget "$H" "$SD" '[j["last_error"] is not None, j["tracked"], j["checked"]]')" "[true, $((N + 1)), $N]"
eq "the seed copy of email $E10 was never checked (checked_at null)" \
  "$(st checked-copy "$(seed_copy "$E10")" "$H")" false
# unknown never erases what was known: every email and copy of before, byte for byte
st snapshot "$H" >"$TMP/during.snap"
$PY - "$TMP/before.snap" "$TMP/during.snap" 2>"$TMP/snap.err" <<'PY'
import json, sys
def load(p):
    d = {}
    for line in open(p):
        k, j = line.rstrip("\n").split(" ", 1)
        j = json.loads(j)
        j.pop("checked_at", None)  # the other.test copies are checked every round
        d[k] = j
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = [f"{k}: {a[k]} -> {b.get(k)}" for k in a if a[k] != b.get(k)]
if bad or not a:
    sys.exit("\n".join(bad) or "empty snapshot")
PY
ok $? "during the outage every count of every email and copy stays what it was" ||
  sed 's/^/#   /' "$TMP/snap.err"
match "$H" placed
ok $? "... and still exactly the expected placement (with email $E10's seed copy pending)" ||
  sed 's/^/#   /' "$TMP/match.err"
eq "/domains $OD during the outage: mock, no error, $((N + 1)) tracked and checked, rounds going on" \
  "$(dget "$H" "$OD" "[j['loop'], j['last_error'], j['tracked'], j['checked'], j['last_round_at'] != '$OD_CHECKED_ROUND']")" \
  "[\"mock\", null, $((N + 1)), $((N + 1)), true]"

start_dovecot "$DC" "$DP" "$DPS" "$TMP/certs"
ok $? "Dovecot started again (same Maildir and ports)" || { finish; exit 1; }
no_error() { [ "$(dget "$1" "$2" 'j["last_error"]')" = None ]; }
wait_for 90 no_error "$H" "$SD"
ok $? "a later round succeeds: /domains $SD last_error null again"
eq "/domains $SD after the restart: $((N + 1)) tracked, $((N + 1)) checked" \
  "$(dget "$H" "$SD" '[j["loop"], j["tracked"], j["checked"], j["last_error"]]')" "[\"imap\", $((N + 1)), $((N + 1)), null]"
match "$H" placed
ok $? "after the restart every email and copy is exactly as expected" || sed 's/^/#   /' "$TMP/match.err"
eq "the seed copy of email $E10 is now checked (and pending)" \
  "$(st checked-copy "$(seed_copy "$E10")" "$H") $(st got-copy "$(seed_copy "$E10")" "$H" | $PY -c 'import json,sys; print(json.load(sys.stdin)[6])')" "true 1"
eq "two connections in all: the first one and the reconnect" \
  "$(grep -c "imap loop connected domain=$SD" "$TMP/health/out.log")" 2

# --- a wrong CA: a second health-service ---------------------------------------------
logins() { grep -c 'imap-login: Info: Login: ' "$DC/dovecot.log"; }
L0=$(logins)
HP2=$(freeport)
H2=http://127.0.0.1:$HP2
start_health health2 "$HP2" CHECK_INTERVAL=1 KAFKA_GROUP_ID=health-wrong-ca \
  FEEDBACK_LOOPS_FILE="$TMP/loops-wrongca.json"
ok $? "a second health-service starts (own DB and consumer group, ca_file = other-ca.pem)"
all_tracked2() { local e; for e in "${EIDS[@]}"; do tracked_is "$H2" "$e" 2 || return 1; done; }
wait_for 60 all_tracked2
ok $? "it consumed every event again: every email tracked with 2 copies"
wait_for 20 has_error "$H2" "$SD"
ok $? "/domains $SD of the second instance shows a last_error"
rounds "$H2" "$SD" 3
ok $? "three more rounds of $SD in the second instance"
err=$(dget "$H2" "$SD" 'j["last_error"]')
echo "# last_error: $err"
ok "$([[ $err == *certificate* ]]; echo $?)" "the last_error mentions the certificate"
grep -q "imap loop connect failed domain=$SD .*certificate of localhost:$DP not trusted: .*other-ca.pem" "$TMP/health2/out.log"
ok $? "health2 log: certificate of localhost:$DP not trusted (other-ca.pem)"
wait_for 30 match "$H2" unplaced
ok $? "no copy of $SD gets a placement; the $OD copies exactly as computed" || sed 's/^/#   /' "$TMP/match.err"
eq "delivered + spam of the $SD copies: 0 (and none ever checked)" \
  "$(for e in "${EIDS[@]}"; do m=$(seed_copy "$e"); st got-copy "$m" "$H2"; st checked-copy "$m" "$H2"; done |
    $PY -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]; print([sum(x[1] + x[2] for x in r[0::2]), sum(r[1::2])])')" \
  "[0, 0]"
eq "/domains $SD of the second instance: imap, $((N + 1)) tracked, 0 checked" \
  "$(dget "$H2" "$SD" '[j["loop"], j["tracked"], j["checked"]]')" "[\"imap\", $((N + 1)), 0]"
eq "/domains $OD of the second instance: unaffected (mock, all checked, no error)" \
  "$(dget "$H2" "$OD" '[j["loop"], j["tracked"], j["checked"], j["last_error"]]')" "[\"mock\", $((N + 1)), $((N + 1)), null]"
sleep 0.3 # let imap-login write its lines
eq "Dovecot logged no LOGIN for the untrusted sessions" "$(logins)" "$L0"
match "$H" placed
ok $? "the first instance is unaffected by the second one" || sed 's/^/#   /' "$TMP/match.err"

# --- shutdown ------------------------------------------------------------------------
stop_named health2
eq "health2 exits 0 on SIGTERM" "$STOP_RC" 0
stop_named health
eq "health exits 0 on SIGTERM" "$STOP_RC" 0
stop_named warmup
eq "warmup exits 0 on SIGTERM" "$STOP_RC" 0
check "no sanitizer report (health)" -- sanitizer_clean health
check "no sanitizer report (health2)" -- sanitizer_clean health2
check "no sanitizer report (warmup)" -- sanitizer_clean warmup
stop_dovecot
ok $? "Dovecot stopped"
stop_pid "$SINK_PID"
stop_pid "$BROKER_PID"
left=""
for p in $PIDS; do alive "$p" && left="$left $p"; done
eq "every process started by the test is stopped" "$left" ""
finish
