#!/bin/bash
# test_identities.sh - sending identities and the placement policy (DESIGN
# 9.3) through a real warmup-service and the dev broker: every bad POST
# /identities is a 4xx JSON error that stores nothing; create, list, get,
# pause and resume with today's quota and state; placement.summary events
# produced with kcat onto feedback-events drive a provider from ramping to
# holding to paused (WARMUP_POLICY's thresholds, the reason, the log line,
# warmup_policy_decisions_total and the warmup_identity_state gauge); an
# operator resume with its grace; a summary for an unknown address counted
# and ignored; a restart keeps everything, and a clock 25 h later
# (WARMUP_CLOCK_OFFSET) lets the cooldown end.
. "$(dirname "$0")/lib.sh"

TOKEN_API=api-token-for-identities-test
AUTH=(-H "Authorization: Bearer $TOKEN_API")

mkdir -p "$TMP/broker"
"$BROKER_BIN" -n 1 -p 3 -f "$TMP/broker/bootstrap" -t email-events -t emailId-events \
  -t feedback-events </dev/null >/dev/null 2>"$TMP/broker/broker.log" &
BROKER_PID=$!; track $BROKER_PID
wait_for 10 test -s "$TMP/broker/bootstrap"; ok $? "kafka-dev-broker starts (with feedback-events)" || { finish; exit 1; }
BROKERS=$(head -1 "$TMP/broker/bootstrap")
cat >"$TMP/clients.json" <<EOF
[{"name": "relay", "type": "DRYRUN", "spool_dir": "$TMP/spool/relay"},
 {"name": "bulk", "type": "DRYRUN", "spool_dir": "$TMP/spool/bulk"}]
EOF
WP=$(freeport); W=http://127.0.0.1:$WP
POLICY='{"min_checked":20,"hold_spam_rate":0.05,"pause_spam_rate":0.20,"cooldown_hours":24}'
WARMUP=(SMTP_CLIENTS_FILE="$TMP/clients.json" API_TOKEN=$TOKEN_API WARMUP_POLICY="$POLICY")
start_warmup warmup "$WP" "${WARMUP[@]}"; ok $? "warmup-service starts" || { finish; exit 1; }

api() { http "$1" "$W$2" "${3-}" "${AUTH[@]}" "${@:4}"; }
body() { cut -d' ' -f2-; }
ident() { curl -s "${AUTH[@]}" "$W/identities/$1"; }
# metric NAME{labels} - its value on /metrics (0 when absent)
metric() { curl -s "$W/metrics" | awk -v m="$1" '$1 == m {v = $2} END {print v + 0}'; }
state_gauge() { # IDENTITY - the state whose warmup_identity_state series is 1, else "none"
  curl -s "$W/metrics" | awk -v i="$1" '$1 ~ "^warmup_identity_state\\{identity=\"" i "\"" && $2 == 1 {
    sub(/.*state="/, "", $1); sub(/".*/, "", $1); s = s $1 } END {print s ? s : "none"}'; }
decisions() { metric "warmup_policy_decisions_total{identity=\"$1\",provider=\"$2\",decision=\"$3\",reason=\"$4\"}"; }
produce() { kcat -P -b "$BROKERS" -t feedback-events -K $'\t' 2>>"$TMP/kcat.err"; }
summary() { # IDENTITY PROVIDER CHECKED INBOX SPAM BOUNCED COMPLAINED
  printf '%s\t{"v":1,"type":"placement.summary","identity":"%s","provider":"%s","window_s":86400,"checked":%s,"inbox":%s,"spam":%s,"bounced":%s,"complained":%s,"at":"2026-05-01T10:00:00Z"}\n' \
    "$1" "$1" "$2" "$3" "$4" "$5" "$6" "$7"; }
summaries() { metric 'warmup_placement_summaries_total{result="applied"}'; }
# wait_summaries N - until N summaries were applied to an identity
wait_summaries() { wait_for 30 bash -c "[ \$(curl -s $W/metrics | awk '\$1 == \"warmup_placement_summaries_total{result=\\\"applied\\\"}\" {print \$2}') -ge $1 ]"; }
# gmail FIELD... - "state reason ..." of provider gmail of identity 1
prov() { jget "$(ident 1)" "\" | \".join(str(j[\"providers\"][\"$1\"][k]) for k in \"${*:2}\".split())"; }

# --- bad input: a 4xx JSON error each, nothing stored
WIN='"window":{"start":"08:00","end":"20:00","tz":"UTC"}'
RAMP='"start_per_day":20,"growth_pct":15,"max_per_day":5000'
bad=(
  '400 invalid_json {'
  '400 invalid_json []'
  '400 invalid_field {}'
  '400 invalid_field {"address":"not-an-address"}'
  '400 invalid_field {"address":5}'
  '400 invalid_field {"address":"a@b.test","name":"A\r\nBcc: x@y.test"}'
  '400 invalid_field {"address":"a@b.test","name":7}'
  '400 invalid_field {"address":"a@b.test","smtp_client":"nope"}'
  '400 invalid_field {"address":"a@b.test","from":"x@y.test"}'
  '400 invalid_field {"address":"a@b.test","warmup":5}'
  '400 invalid_field {"address":"a@b.test","warmup":{'"$RAMP"',"speed":3}}'
  '400 invalid_field {"address":"a@b.test","warmup":{"start_per_day":0,"growth_pct":15,"max_per_day":50}}'
  '400 invalid_field {"address":"a@b.test","warmup":{"start_per_day":1.5,"growth_pct":15,"max_per_day":50}}'
  '400 invalid_field {"address":"a@b.test","warmup":{"start_per_day":20,"growth_pct":-1,"max_per_day":50}}'
  '400 invalid_field {"address":"a@b.test","warmup":{"start_per_day":20,"growth_pct":1000.5,"max_per_day":50}}'
  '400 invalid_field {"address":"a@b.test","warmup":{"start_per_day":20,"growth_pct":"15","max_per_day":50}}'
  '400 invalid_field {"address":"a@b.test","warmup":{"start_per_day":20,"growth_pct":15,"max_per_day":19}}'
  '400 invalid_field {"address":"a@b.test","warmup":{"start_per_day":20,"growth_pct":15}}'
  '400 invalid_field {"address":"a@b.test","warmup":{'"$RAMP"',"start_date":"2026-13-01"}}'
  '400 invalid_field {"address":"a@b.test","warmup":{'"$RAMP"',"start_date":"2026-02-30"}}'
  '400 invalid_field {"address":"a@b.test","warmup":{'"$RAMP"',"start_date":"2026-1-05"}}'
  '400 invalid_field {"address":"a@b.test","warmup":{'"$RAMP"',"start_date":"2026-12-05T00:00"}}'
  '400 invalid_field {"address":"a@b.test","warmup":{'"$RAMP"',"start_date":20261205}}'
  '400 invalid_field {"address":"a@b.test","window":{"start":"8:00","end":"20:00"}}'
  '400 invalid_field {"address":"a@b.test","window":{"start":"24:00","end":"24:00"}}'
  '400 invalid_field {"address":"a@b.test","window":{"start":"08:00","end":"24:01"}}'
  '400 invalid_field {"address":"a@b.test","window":{"start":"20:00","end":"08:00"}}'
  '400 invalid_field {"address":"a@b.test","window":{"start":"08:00","end":"08:00"}}'
  '400 invalid_field {"address":"a@b.test","window":{"start":"08:00"}}'
  '400 invalid_field {"address":"a@b.test","window":{"start":"08:00","end":"20:00","tz":"Mars/Olympus"}}'
  '400 invalid_field {"address":"a@b.test","window":{"start":"08:00","end":"20:00","tz":"../../etc/passwd"}}'
  '400 invalid_field {"address":"a@b.test","window":{"start":"08:00","end":"20:00","days":5}}'
  '400 invalid_field {"address":"a@b.test","window":[]}'
)
allbad=0
for row in "${bad[@]}"; do
  want=${row%% *}; rest=${row#* }; code=${rest%% *}; req=${rest#* }
  got=$(api POST /identities "$req")
  gc=$(jget "$(echo "$got" | body)" 'j["error"]["code"]' 2>/dev/null)
  if [ "${got%% *} $gc" != "$want $code" ]; then allbad=1; echo "#   $req -> $got"; fi
done
eq "every bad POST /identities (${#bad[@]}) is a 4xx JSON error with its code" "$allbad" 0
eq "  ... a body without Content-Type is 415" "$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -X POST --data-binary '{"address":"a@b.test"}' -H 'Content-Type:' "$W/identities")" 415
eq "  ... nothing stored: GET /identities is []" "$(api GET /identities | body)" "[]"
eq "GET /identities/abc: 400 invalid_id" "$(api GET /identities/abc | cut -c1-3)" 400
eq "GET /identities/99: 404" "$(api GET /identities/99 | cut -c1-3)" 404
eq "POST /identities/99/pause and /resume: 404" "$(api POST /identities/99/pause | cut -c1-3) $(api POST /identities/99/resume | cut -c1-3)" "404 404"
eq "GET /identities?limit=0: 400" "$(api GET '/identities?limit=0' | cut -c1-3)" 400
eq "no bearer token: 401" "$(http GET "$W/identities" | cut -c1-3)" 401

# --- create, list, get
START=$($PY -c 'import datetime, zoneinfo; print((datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Berlin")).date() - datetime.timedelta(days=3)).isoformat())')
TODAY=$($PY -c 'import datetime, zoneinfo; print(datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Berlin")).date().isoformat())')
r=$(api POST /identities '{"address":"News@ACME.test","name":"Acme News","smtp_client":"RELAY","warmup":{"start_per_day":20,"growth_pct":15,"max_per_day":5000,"start_date":"'"$START"'"},"window":{"start":"08:00","end":"20:00","tz":"Europe/Berlin"}}')
eq "POST /identities: 201" "${r%% *}" 201
eq "  ... the identity as stored (address normalised, the client as configured, warmup and window echoed)" \
  "$(jget "$(echo "$r" | body)" '[j[k] for k in ("id","address","name","smtp_client","warmup","window","paused","providers")]')" \
  "[1, \"News@acme.test\", \"Acme News\", \"relay\", {\"start_per_day\": 20, \"growth_pct\": 15, \"max_per_day\": 5000, \"start_date\": \"$START\"}, {\"start\": \"08:00\", \"end\": \"20:00\", \"tz\": \"Europe/Berlin\"}, false, {}]"
eq "  ... today: day 3 of the ramp in Berlin, quota floor(20 * 1.15^3) = 30, nothing sent, ramping" \
  "$(jget "$(echo "$r" | body)" 'j["today"]')" \
  "{\"quota\": 30, \"sent\": 0, \"state\": \"ramping\", \"reason\": \"ramp day 3 since $START\", \"day\": \"$TODAY\"}"
r=$(api POST /identities '{"address":"ops@acme.test"}')
eq "an identity without warmup or window: 201, no quota, warm" \
  "${r%% *} $(jget "$(echo "$r" | body)" '[j["id"], j["warmup"], j["window"], j["name"], j["today"]["quota"], j["today"]["state"]]')" \
  "201 [2, null, null, null, null, \"warm\"]"
r=$(api POST /identities '{"address":"news@acme.TEST","name":"Again"}')
eq "the same address in other case: 409 identity_exists" "${r%% *} $(jget "$(echo "$r" | body)" 'j["error"]["code"]')" "409 identity_exists"
eq "GET /identities: both, in id order" "$(jget "$(api GET /identities | body)" '[x["address"] for x in j]')" '["News@acme.test", "ops@acme.test"]'
eq "GET /identities?limit=1&offset=1: the second" "$(jget "$(api GET '/identities?limit=1&offset=1' | body)" '[x["id"] for x in j]')" "[2]"
eq "GET /identities/1 is the created one" "$(jget "$(ident 1)" 'j["address"] + " " + j["today"]["state"]')" "News@acme.test ramping"
eq "warmup_identity_state: ramping for the ramp, warm for the other" "$(state_gauge News@acme.test) $(state_gauge ops@acme.test)" "ramping warm"

# --- operator pause and resume
r=$(api POST /identities/1/pause '{"reason":"list cleanup"}')
eq "pause: 200, paused with its reason" "${r%% *} $(jget "$(echo "$r" | body)" '[j["paused"], j["paused_reason"], j["today"]["state"], j["today"]["reason"]]')" \
  '200 [true, "list cleanup", "paused", "list cleanup"]'
eq "  ... a reason with a line break is 400" "$(api POST /identities/1/pause "$(printf '{"reason":"a\\r\\nb"}')" | cut -c1-3)" 400
eq "  ... gauge paused; decision pause/operator counted" "$(state_gauge News@acme.test) $(decisions News@acme.test all pause operator)" "paused 1"
check "  ... logged" -- grep -q 'identity=News@acme.test provider=all paused: list cleanup (decision=pause reason=operator)' "$TMP/warmup/out.log"
r=$(api POST /identities/1/resume)
eq "resume: 200, ramping again" "${r%% *} $(jget "$(echo "$r" | body)" '[j["paused"], j["paused_reason"], j["today"]["state"]]')" '200 [false, null, "ramping"]'
eq "  ... gauge ramping; resume/operator counted" "$(state_gauge News@acme.test) $(decisions News@acme.test all resume operator)" "ramping 1"

# --- the policy over feedback-events
wait_for 30 grep -q 'kconsumer: assigned' "$TMP/warmup/out.log"; ok $? "the feedback consumer is assigned its partitions"
{ summary News@acme.test gmail 10 1 9 0 0; summary news@ACME.test yahoo 50 50 0 0 0; } | produce
wait_summaries 2; ok $? "two summaries applied (the identity's address in any case)"
eq "10 checked < min_checked: rates stored, no decision" "$(prov gmail state checked spam_rate inbox_rate)" "ramping | 10 | 0.9 | 0.1"
eq "  ... yahoo: all inbox" "$(prov yahoo state checked inbox_rate spam_rate)" "ramping | 50 | 1.0 | 0.0"
eq "  ... identity ramping" "$(jget "$(ident 1)" 'j["today"]["state"]')" ramping

summary News@acme.test gmail 40 37 3 0 0 | produce
wait_summaries 3
eq "spam 3/40 = 0.075 > hold_spam_rate: gmail holding with the reason" "$(prov gmail state reason)" \
  "holding | spam rate 0.075 above hold_spam_rate 0.05 (40 checked)"
eq "  ... the identity holding, the reason names the provider" "$(jget "$(ident 1)" 'j["today"]["state"] + " | " + j["today"]["reason"]')" \
  "holding | gmail holding: spam rate 0.075 above hold_spam_rate 0.05 (40 checked)"
eq "  ... gauge holding; decision hold/spam_rate counted" "$(state_gauge News@acme.test) $(decisions News@acme.test gmail hold spam_rate)" "holding 1"
check "  ... logged" -- grep -q 'identity=News@acme.test provider=gmail holding: spam rate 0.075 above hold_spam_rate 0.05 (40 checked) (decision=hold reason=spam_rate)' "$TMP/warmup/out.log"

T0=$(date +%s%3N)
summary News@acme.test gmail 40 26 14 0 0 | produce
wait_for 30 bash -c "curl -s -H 'Authorization: Bearer $TOKEN_API' $W/identities/1 | grep -q '\"state\":\"paused\"'"
echo "# a spam-heavy summary produced -> gmail paused in GET /identities/1: $(($(date +%s%3N) - T0)) ms (kcat, dev broker, consumer batch, one transaction)"
wait_summaries 4
eq "spam 14/40 = 0.35 > pause_spam_rate: gmail paused" "$(prov gmail state reason spam_rate)" \
  "paused | spam rate 0.35 above pause_spam_rate 0.20 (40 checked) | 0.35"
eq "  ... yahoo untouched" "$(prov yahoo state)" ramping
eq "  ... identity holding (paused for gmail)" "$(jget "$(ident 1)" 'j["today"]["state"] + " | " + j["today"]["reason"]')" \
  "holding | gmail paused: spam rate 0.35 above pause_spam_rate 0.20 (40 checked)"
eq "  ... decision pause/spam_rate counted" "$(decisions News@acme.test gmail pause spam_rate)" 1
check "  ... logged" -- grep -q 'identity=News@acme.test provider=gmail paused: spam rate 0.35 above pause_spam_rate 0.20 (40 checked)' "$TMP/warmup/out.log"

summary nobody@acme.test gmail 40 0 40 0 0 | produce
wait_for 30 bash -c "[ \$(curl -s $W/metrics | awk '\$1 == \"warmup_placement_summaries_total{result=\\\"unknown_identity\\\"}\" {print \$2}') -ge 1 ]"
ok $? "a summary for an address without identity is counted as unknown_identity"
eq "  ... and ignored: still two identities" "$(jget "$(api GET /identities | body)" 'len(j)')" 2
printf 'News@acme.test\t{"v":1,"type":"placement.summary","identity":"News@acme.test","provider":"gm\\nail","window_s":86400,"checked":40,"inbox":0,"spam":40,"bounced":0,"complained":0,"at":"2026-05-01T10:00:00Z"}\n' | produce
wait_for 30 bash -c "[ \$(curl -s $W/metrics | awk '\$1 == \"feedback_events_total{type=\\\"invalid\\\"}\" {print \$2}') -ge 1 ]"
ok $? "a summary whose provider holds a line break is counted invalid"
eq "  ... and applied nowhere" "$(jget "$(ident 1)" 'sorted(j["providers"])')" '["gmail", "yahoo"]'
summary News@acme.test gmail 40 40 0 0 0 | produce
wait_summaries 5
eq "a clean summary within cooldown_hours: gmail stays paused" "$(prov gmail state spam_rate)" "paused | 0.0"

r=$(api POST /identities/1/resume)
eq "operator resume: gmail ramping, 'resumed by operator'" "$(prov gmail state reason)" "ramping | resumed by operator"
eq "  ... identity ramping; gauge; resume/operator for gmail counted" \
  "$(jget "$(echo "$r" | body)" 'j["today"]["state"]') $(state_gauge News@acme.test) $(decisions News@acme.test gmail resume operator)" "ramping ramping 1"
summary News@acme.test gmail 40 26 14 0 0 | produce
wait_summaries 6
eq "  ... in the grace after the resume a pause rate holds, it does not pause" "$(prov gmail state reason)" \
  "holding | spam rate 0.35 above pause_spam_rate 0.20 (40 checked); held, not paused: operator resume"

curl -s "$W/metrics" | promtool check metrics >"$TMP/promtool.out" 2>&1
ok $? "promtool check metrics is clean with the identities' series" || sed 's/^/#   /' "$TMP/promtool.out"

# --- restart: everything kept; a clock 25 h later ends the cooldown
BEFORE=$(jget "$(api GET /identities | body)" '[[x[k] for k in ("id","address","name","smtp_client","warmup","window","paused","providers")] for x in j]')
stop_named warmup; eq "SIGTERM: warmup exits 0" "$STOP_RC" 0
check "  ... no sanitizer report" -- sanitizer_clean warmup
start_warmup warmup "$WP" "${WARMUP[@]}" WARMUP_CLOCK_OFFSET=90000; ok $? "warmup-service starts again, its identities' clock 25 h ahead"
eq "  ... the identities and their providers as before" \
  "$(jget "$(api GET /identities | body)" '[[x[k] for k in ("id","address","name","smtp_client","warmup","window","paused","providers")] for x in j]')" "$BEFORE"
# The Berlin day 25 h from now is one or (after 23:00 there) two days later.
AHEAD=$($PY -c 'import datetime, zoneinfo, math; d = (datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Berlin")) + datetime.timedelta(seconds=90000)).date() - datetime.date.fromisoformat("'"$START"'"); print(d.days, math.floor(20 * 1.15 ** d.days))')
eq "  ... today is a day later: quota floor(20 * 1.15^${AHEAD% *}) = ${AHEAD#* }" "$(jget "$(ident 1)" 'j["today"]["quota"]')" "${AHEAD#* }"
eq "  ... the gauge is back from the store (holding)" "$(state_gauge News@acme.test) $(state_gauge ops@acme.test)" "holding warm"
wait_for 60 bash -c "[ \$(grep -c 'kconsumer: assigned' $TMP/warmup/out.log) -ge 2 ]"
summary News@acme.test gmail 40 40 0 0 0 | produce
wait_summaries 1
eq "a clean summary after the cooldown: gmail ramping again" "$(prov gmail state)" ramping
eq "  ... decision ramp/recovered counted; identity ramping" \
  "$(decisions News@acme.test gmail ramp recovered) $(jget "$(ident 1)" 'j["today"]["state"]') $(state_gauge News@acme.test)" "1 ramping ramping"

# --- warm at max_per_day; a ramp that has not started
r=$(api POST /identities '{"address":"max@acme.test","warmup":{"start_per_day":30,"growth_pct":15,"max_per_day":30}}')
eq "a ramp at max_per_day from the start: quota 30, warm, start_date today (the clock's)" \
  "$(jget "$(echo "$r" | body)" '[j["today"]["quota"], j["today"]["state"], j["today"]["reason"], j["warmup"]["start_date"] == j["today"]["day"]]')" \
  '[30, "warm", "quota at max_per_day 30", true]'
LATER=$($PY -c 'import datetime; print((datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=11)).date().isoformat())')
r=$(api POST /identities '{"address":"later@acme.test","warmup":{"start_per_day":5,"growth_pct":10,"max_per_day":50,"start_date":"'"$LATER"'"}}')
eq "a ramp starting in 10 days: quota 0, ramping, the reason says when" \
  "$(jget "$(echo "$r" | body)" '[j["today"]["quota"], j["today"]["state"], j["today"]["reason"]]')" \
  "[0, \"ramping\", \"the ramp starts on $LATER\"]"
eq "  ... their gauges" "$(state_gauge max@acme.test) $(state_gauge later@acme.test)" "warm ramping"

stop_named warmup; eq "SIGTERM: warmup exits 0" "$STOP_RC" 0
check "no sanitizer report" -- sanitizer_clean warmup
DB_PATH="$TMP/warmup/warmup.db" WARMUP_POLICY='{"min_checked":0}' "$WARMUP_BIN" >"$TMP/badpolicy.log" 2>&1
eq "WARMUP_POLICY out of range: start-up refused (exit 2)" "$?" 2
check "  ... with one line naming WARMUP_POLICY" -- grep -q 'WARMUP_POLICY: .*min_checked' "$TMP/badpolicy.log"
DB_PATH="$TMP/warmup/warmup.db" WARMUP_POLICY='{"pause_rate":0.1}' "$WARMUP_BIN" >"$TMP/badpolicy.log" 2>&1
eq "WARMUP_POLICY with an unknown key: refused (exit 2)" "$?" 2
stop_pid "$BROKER_PID"
finish
