#!/bin/bash
# test_analytics.sh - GET /analytics end to end: email.sent events with
# identity, campaign and variant, sent in three different hours, and
# email.failed dead letters (new ones, and one for a copy already tracked)
# on the dev broker; two health services (the store in one file and in
# four) place them with the mock feedback loop (deterministic: the answers
# are computed here from the same hash). Every query's series (each
# filter, hour and day buckets, the empty buckets as zeros) must be exactly
# what the copies say; each campaign variant's delivered and spam differ
# as computed; the totals agree with /domains and the metrics
# health_analytics_copies_total; a restart keeps everything; bad
# parameters are 400 naming the parameter.
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
cat > "$TMP/loops.json" <<'JSON'
{"a.test": {"loop": "mock", "delivered": 0.6, "spam": 0.3, "opened": 0.5, "read": 0.5},
 "b.test": {"loop": "mock", "delivered": 0.2, "spam": 0.6, "opened": 0.5, "read": 0.5},
 "default": null}
JSON
HP1=$(freeport); HP4=$(freeport)
H1=http://127.0.0.1:$HP1; H4=http://127.0.0.1:$HP4
start_health h1 "$HP1" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json" KAFKA_GROUP_ID=h1 DB_FILES=1
ok $? "health-service starts (one store file)"
start_health h4 "$HP4" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json" KAFKA_GROUP_ID=h4 DB_FILES=4
ok $? "health-service starts (four store files)"

# the copies: what each event says, and what the mock makes of it
$PY - "$TMP" <<'PY'
import json, sys, time
tmp = sys.argv[1]
now = int(time.time())
h0 = now // 3600 * 3600 - 3 * 3600
iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))
rates = {"a.test": (0.6, 0.3), "b.test": (0.2, 0.6)}
def fnv(s):
    h = 1469598103934665603
    for b in s.encode():
        h ^= b; h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h
copies, events, n = [], [], 0
def add(domain, ident, campaign, variant, at, failed=False, mid=None):
    global n
    if mid is None:
        n += 1
        mid = "<email-%d.%016x@w.test>" % (campaign or 1, (n * 0x9E3779B97F4A7C15) % 2**64)
    ev = {"v": 1, "type": "email.failed" if failed else "email.sent", "message_id": mid,
          "broadcast_id": "<email-%d@w.test>" % (campaign or 1), "email_id": campaign or 1,
          "recipient": "u%d@%s" % (n, domain), "domain": domain, "smtp_client": "custom",
          "sent_at": iso(at)}
    if failed: ev["smtp_reply"] = "550 5.1.1 no such user"
    if ident: ev["identity"] = ident
    if campaign: ev["campaign"] = campaign
    if variant: ev["variant"] = variant
    events.append((mid, ev))
    return mid
def copy(domain, ident, campaign, variant, at, failed=False):
    mid = add(domain, ident, campaign, variant, at, failed)
    c = {"mid": mid, "domain": domain, "identity": ident or "", "campaign": campaign,
         "variant": variant or "", "at": at, "bounced": failed, "placement": None,
         "opened": False, "read": False}
    if not failed and domain in rates:
        h = fnv(mid); d, s = rates[domain]
        u0, u16, u32 = (h & 0xffff) / 65536, ((h >> 16) & 0xffff) / 65536, ((h >> 32) & 0xffff) / 65536
        c["placement"] = "inbox" if u0 < d else "spam" if u0 < d + s else None
        c["opened"] = c["placement"] == "inbox" and u16 < 0.5
        c["read"] = c["opened"] and u32 < 0.5
    copies.append(c)
    return c
for i in range(40): copy("a.test", "news@acme.test", 7, "A", h0 + 600)
for i in range(3): copy("a.test", "news@acme.test", 7, "A", h0 + 600, failed=True)
for i in range(40): copy("b.test", "news@acme.test", 7, "B", h0 + 3600 + 300)
for i in range(20): copy("a.test", "promo@acme.test", 0, None, h0 + 7200 + 60)
for i in range(10): copy("c.test", "promo@acme.test", 0, None, h0 + 7200 + 60)  # no loop
for i in range(10): copy("a.test", None, 8, None, h0 + 7200 + 1800)
# a tracked copy dead-lettered later: one the mock never finds, so the
# order of its round and its email.failed does not matter
late = next(c for c in copies if c["campaign"] == 0 and c["domain"] == "a.test" and c["placement"] is None)
add(late["domain"], late["identity"], 0, None, late["at"], failed=True, mid=late["mid"])
late["bounced"] = True
with open(tmp + "/events.tsv", "w") as f:
    for mid, ev in events:
        f.write(mid + "\t" + json.dumps(ev, separators=(",", ":")) + "\n")
json.dump({"h0": h0, "copies": copies}, open(tmp + "/copies.json", "w"))
PY
read -r FROM TO < <($PY -c 'import json,sys,time; h=json.load(open(sys.argv[1]))["h0"]; f=lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)); print(f(h-3600), f(h+4*3600))' "$TMP/copies.json")
kcat -P -b "$BROKERS" -t email-events -K $'\t' <"$TMP/events.tsv" 2>"$TMP/kcat.err"
ok $? "$(wc -l <"$TMP/events.tsv") events produced (campaign 7 variants A and B, no campaign, campaign 8; dead letters)"

# want QUERY - the answer /analytics?QUERY must give, from copies.json
cat > "$TMP/want.py" <<'PY'
import calendar, json, sys, time, urllib.parse
data = json.load(open(sys.argv[1]))
q = dict(urllib.parse.parse_qsl(sys.argv[2]))
got = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
def parse(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))
w = 3600 if q.get("bucket", "hour") == "hour" else 86400
f, t = parse(q["from"]) // w * w, -(-parse(q["to"]) // w) * w
names = ["sent", "delivered", "spam", "opened", "read", "bounced", "complained"]
series = {b: dict.fromkeys(names, 0) for b in range(f, t, w)}
for c in data["copies"]:
    if not (f <= c["at"] < t): continue
    if "domain" in q and c["domain"] != q["domain"]: continue
    if "identity" in q and c["identity"] != q["identity"]: continue
    if "campaign" in q and c["campaign"] != int(q["campaign"]): continue
    if "variant" in q and c["variant"] != q["variant"]: continue
    s = series[c["at"] // w * w]
    s["sent"] += 1
    s["delivered"] += c["placement"] == "inbox"
    s["spam"] += c["placement"] == "spam"
    s["opened"] += c["opened"]; s["read"] += c["read"]; s["bounced"] += c["bounced"]
iso = lambda b: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(b))
want = {"bucket": "hour" if w == 3600 else "day", "from": iso(f), "to": iso(t),
        "filters": {"domain": q.get("domain"), "identity": q.get("identity"),
                    "campaign": int(q["campaign"]) if "campaign" in q else None,
                    "variant": q.get("variant")},
        "series": [dict({"t": iso(b)}, **series[b]) for b in sorted(series)],
        "totals": {k: sum(series[b][k] for b in series) for k in names}}
if got is None:
    print(json.dumps(want["totals"], sort_keys=True)); sys.exit(0)
if got != want:
    for k in want:
        if got.get(k) != want[k]: print("#   %s: got %s, want %s" % (k, json.dumps(got.get(k))[:600], json.dumps(want[k])[:600]))
    sys.exit(1)
PY
# matches H QUERY - /analytics?QUERY on H is exactly what the copies say
matches() { $PY "$TMP/want.py" "$TMP/copies.json" "$2" "$(curl -s "$1/analytics?$2")"; }
base="from=$FROM&to=$TO"
for f in 1 4; do
  eval "H=\$H$f"
  wait_for 60 matches "$H" "$base"
  ok $? "DB_FILES=$f: hour series of every copy: exact (3 hours with copies, 2 empty, after the rounds)" || matches "$H" "$base"
  for qq in "domain=a.test" "domain=b.test" "domain=c.test" "identity=news@acme.test" \
            "identity=promo@acme.test" "campaign=7" "campaign=8" "campaign=7&variant=A" \
            "campaign=7&variant=B" "variant=B&domain=b.test" "campaign=7&identity=promo@acme.test" \
            "domain=nowhere.test" "bucket=day" "bucket=day&campaign=7&variant=A"; do
    matches "$H" "$base&$qq"
    ok $? "DB_FILES=$f: $qq: exact"
  done
  # what the identity's address looks like in the query does not matter
  eq "DB_FILES=$f: identity normalised (NEWS@ACME.TEST's domain lower-cased)" \
    "$(curl -s "$H/analytics?$base&identity=news@ACME.test" | $PY -c 'import json,sys; j=json.load(sys.stdin); print(j["totals"]["sent"], j["filters"]["identity"])')" \
    "83 news@acme.test"
done

# each variant's placement, as the mock placed their copies
A=$($PY "$TMP/want.py" "$TMP/copies.json" "$base&campaign=7&variant=A")
B=$($PY "$TMP/want.py" "$TMP/copies.json" "$base&campaign=7&variant=B")
echo "# variant A: $A"
echo "# variant B: $B"
gotA=$(curl -s "$H1/analytics?$base&campaign=7&variant=A" | $PY -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["totals"], sort_keys=True))')
gotB=$(curl -s "$H1/analytics?$base&campaign=7&variant=B" | $PY -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["totals"], sort_keys=True))')
eq "variant A's totals (sent to a.test)" "$gotA" "$A"
eq "variant B's totals (sent to b.test)" "$gotB" "$B"
check "variant A lands in the inbox more than in spam, B in spam more than in the inbox" -- $PY -c 'import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); sys.exit(0 if a["delivered"]>a["spam"] and b["spam"]>b["delivered"] else 1)' "$gotA" "$gotB"

# the totals agree with /domains, and with the metrics
agree() { $PY - "$(curl -s "$1/analytics?$base")" "$(curl -s "$1/domains")" <<'PY'
import json, sys
a, d = json.loads(sys.argv[1])["totals"], json.loads(sys.argv[2])
s = {k: sum(x[k] for x in d) for k in ("tracked", "delivered", "spam", "opened", "read", "bounced", "complained")}
sys.exit(0 if (a["sent"], a["delivered"], a["spam"], a["opened"], a["read"], a["bounced"], a["complained"]) ==
         (s["tracked"], s["delivered"], s["spam"], s["opened"], s["read"], s["bounced"], s["complained"]) else 1)
PY
}
mval() { curl -s "$1/metrics" | awk -v k="health_analytics_copies_total{event=\"$2\"}" '$1 == k { print $2 }'; }
for f in 1 4; do
  eval "H=\$H$f"
  check "DB_FILES=$f: the totals are /domains' sums" -- agree "$H"
  T=$(curl -s "$H/analytics?$base")
  for e in sent delivered spam opened read bounced complained; do
    eq "DB_FILES=$f: health_analytics_copies_total{event=\"$e\"} = the total" "$(mval "$H" $e)" "$(jget "$T" "j['totals']['$e']")"
  done
done

# the default window: the last 7 days by hour
r=$(curl -s "$H1/analytics")
eq "no parameter: hour buckets over 7 days, the same totals" \
  "$(jget "$r" '"%s %s %d" % (j["bucket"], len(j["series"]) in (168, 169), j["totals"]["sent"])')" \
  "hour True $(jget "$T" 'j["totals"]["sent"]')"

# bad parameters: 400, the message naming the parameter
bad() { local r; r=$(http GET "$H1/analytics?$1")
  eq "?${1:0:60} -> 400 naming $2" "${r%% *} $(printf '%s' "${r#* }" | $PY -c 'import json,sys; e=json.load(sys.stdin)["error"]; print(e["code"], sys.argv[1] in e["message"])' "$2" 2>/dev/null)" "400 invalid_query True"; }
bad "from=yesterday" from
bad "to=2026-12-05T10:00:00" to
bad "bucket=week" bucket
bad "campaign=abc" campaign
bad "campaign=0" campaign
bad "identity=not-an-address" identity
bad "from=2026-12-05&to=2026-12-01" from
bad "from=2026-01-01&to=2026-03-01&bucket=hour" bucket
bad "from=2020-01-01&to=2026-01-01" from
bad "variant=$($PY -c 'print("x"*65)')" variant
bad "domain=" domain

# a restart keeps the counts
stop_named h1
start_health h1 "$HP1" CHECK_INTERVAL=1 FEEDBACK_LOOPS_FILE="$TMP/loops.json" KAFKA_GROUP_ID=h1
ok $? "one-file health-service restarted"
check "after the restart: the same hour series" -- matches "$H1" "$base"
check "after the restart: variant B the same" -- matches "$H1" "$base&campaign=7&variant=B"
eq "both stores answer alike" "$(curl -s "$H1/analytics?$base&bucket=day")" "$(curl -s "$H4/analytics?$base&bucket=day")"

stop_named h1; stop_named h4
check "no sanitizer report (one file)" -- sanitizer_clean h1
check "no sanitizer report (four files)" -- sanitizer_clean h4
stop_pid "$BROKER_PID"
finish
