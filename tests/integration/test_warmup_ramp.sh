#!/bin/bash
# test_warmup_ramp.sh - sending identities' ramps and windows (DESIGN 9.3)
# through the real smtp-sink and the dev broker, days simulated with the
# identity clock (WARMUP_CLOCK_OFFSET):
#  - a ramp sends exactly each day's quota (5, 7, 11, 16, 25, then 30: the cap),
#    the rest waits for the next day, with the reason in the progress;
#  - a restart in the middle of a day keeps the day's count;
#  - a window spreads its quota: no tenth of it gets more than twice the
#    even rate;
#  - a From without an identity sends at full speed meanwhile.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp_servers.sh"

start_broker "$TMP/broker" || { ok 1 "broker starts"; finish; exit 1; }
SP=$(freeport); SP2=$(freeport)
start_smtp_sink "$SP" "$TMP/sink" --dump; ok $? "smtp-sink starts"
S1=$SINK_PID
start_smtp_sink "$SP2" "$TMP/sink2" --dump; ok $? "second smtp-sink starts"
SMTP=(CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_TLS=none WORKERS=2 MESSAGE_ID_DOMAIN=warmup.test LOG_LEVEL=info)
# offset_to ISO - seconds to add to the wall clock for it to read ISO now
offset_to() { $PY -c "import datetime,sys,time; t=datetime.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00')).timestamp(); print('%.3f' % (t-time.time()))" "$1"; }
# received DIR FROM - copies from FROM in the sink DIR
received() { grep -il "^From: .*$2" "$1"/msg.* 2>/dev/null | wc -l; }
users_csv() { $PY -c '
import sys
print("name,email_id")
for i in range(int(sys.argv[1])): print(f"U{i},u{i}@d{i%3}.test")' "$1"; }

# --- the window spread, in its own service (runs while the ramp goes on)
WP2=$(freeport); W2=http://127.0.0.1:$WP2
start_warmup spread "$WP2" "${SMTP[@]}" SMTP_PORT=$SP2 WARMUP_CLOCK_OFFSET="$(offset_to 2026-12-07T11:59:58Z)"
ok $? "second warmup-service (clock at 11:59:58 UTC) starts"
r=$(http POST "$W2/identities" '{"address":"spread@acme.test","warmup":{"start_per_day":60,"growth_pct":0,"max_per_day":60,"start_date":"2026-12-01"},"window":{"start":"12:00","end":"12:01","tz":"UTC"}}')
eq "POST /identities (spread) -> 201" "${r%% *}" 201
users_csv 60 | curl -s -o /dev/null -H 'Content-Type: text/csv' --data-binary @- "$W2/users/import"
r=$(http POST "$W2/send" '{"from":"spread@acme.test","subject":"s","body":"b"}')
eq "spread: POST /send -> 202" "${r%% *}" 202
SPREAD_T0=$($PY -c 'import time; print(time.time() + 2)')   # the window opens in ~2 s

# --- the ramp over simulated days
WP=$(freeport); W=http://127.0.0.1:$WP
day_iso() { $PY -c "import datetime; print((datetime.date(2026,12,1)+datetime.timedelta(days=$1)).isoformat())"; }
Q=(5 7 11 16 25 30)
total=0
for d in 0 1 2 3 4 5; do
  date=$(day_iso $d)
  # 10:00:48 of day d: 12 s of its 10:00-10:01 window left
  off=$(offset_to "${date}T10:00:48Z")
  start_warmup warmup "$WP" "${SMTP[@]}" SMTP_PORT=$SP WARMUP_CLOCK_OFFSET="$off" || { ok 1 "day $d: start"; break; }
  if [ $d = 0 ]; then
    r=$(http POST "$W/identities" '{"address":"news@acme.test","name":"Acme News","warmup":{"start_per_day":5,"growth_pct":50,"max_per_day":30,"start_date":"2026-12-01"},"window":{"start":"10:00","end":"10:01","tz":"UTC"}}')
    eq "POST /identities -> 201" "${r%% *}" 201
    IID=$(jget "${r#* }" 'j["id"]')
    users_csv 100 | curl -s -o /dev/null -H 'Content-Type: text/csv' --data-binary @- "$W/users/import"
    r=$(http POST "$W/send" '{"from":"News@Acme.test","subject":"Ramp {{name}}","body":"Hello"}')
    eq "POST /send from the identity -> 202" "${r%% *}" 202
    EID=$(jget "${r#* }" 'j["email_id"]')
    r=$(http POST "$W/send" '{"from":"other@acme.test","subject":"Bulk","body":"Hello"}')
    EID2=$(jget "${r#* }" 'j["email_id"]')
    wait_for 20 bash -c "[ \$(grep -l '^Subject: Bulk' $TMP/sink/msg.* 2>/dev/null | wc -l) -ge 100 ]"
    ok $? "a From without an identity sends its 100 copies at once"
  fi
  if [ $d = 2 ]; then   # a restart in the middle of the day
    sleep 5
    stop_named warmup
    start_warmup warmup "$WP" "${SMTP[@]}" SMTP_PORT=$SP WARMUP_CLOCK_OFFSET="$off"
    ok $? "day 2: restarted mid-window"
  fi
  sleep $([ $d = 2 ] && echo 9 || echo 13)
  got=$(( $(received "$TMP/sink" news@acme.test) - total ))
  eq "day $d ($date): exactly the quota of ${Q[$d]} sent" "$got" "${Q[$d]}"
  total=$((total + got))
  j=$(curl -s "$W/identities/$IID")
  eq "day $d: GET /identities today" "$(jget "$j" '"%s %s %s" % (j["today"]["day"], j["today"]["quota"], j["today"]["sent"])')" "$date ${Q[$d]} ${Q[$d]}"
  p=$(curl -s "$W/emails/$EID")
  eq "day $d: progress pending = the rest" "$(jget "$p" 'j["progress"]["pending"]')" "$((100 - total))"
  why=$(jget "$p" 'j["progress"].get("reason", "")')
  echo "# progress reason: $why"
  check "day $d: the progress says why they wait" -- bash -c "case \"\$1\" in *news@acme.test*outside*|*news@acme.test*quota*) exit 0;; esac; exit 1" _ "$why"
  stop_named warmup
  check "day $d: warmup exits 0 and is sanitizer-clean" -- bash -c "[ $STOP_RC = 0 ] && ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' $TMP/warmup/out.log"
done
eq "the six days sent 94 copies, 6 wait for day 6" "$total" 94

# --- the spread: 60 copies over the 60 s window, per tenth
wait_for 90 bash -c "[ \$(grep -l '^From: .*spread@acme.test' $TMP/sink2/msg.* 2>/dev/null | wc -l) -ge 60 ]"
ok $? "spread: the day's 60 copies were sent within the window"
$PY - "$TMP/sink2" "$SPREAD_T0" > "$TMP/tenths" <<'PY'
import os, sys
d, t0 = sys.argv[1], float(sys.argv[2])
ts = sorted(os.stat(os.path.join(d, n)).st_mtime for n in os.listdir(d) if n.startswith("msg."))
b = [0] * 10
for t in ts:
    k = int((t - t0) // 6)
    b[min(max(k, 0), 9)] += 1
print(" ".join(map(str, b)))
print(max(b))
PY
echo "# copies per tenth of the window: $(head -1 "$TMP/tenths")"
check "spread: no tenth of the window above twice the even rate (12)" -- test "$(tail -1 "$TMP/tenths")" -le 12
sleep 2
eq "spread: nothing beyond the quota" "$(grep -l '^From: .*spread@acme.test' "$TMP"/sink2/msg.* | wc -l)" 60
stop_named spread; eq "spread: SIGTERM exit 0" "$STOP_RC" 0
check "spread: no sanitizer report" -- sanitizer_clean spread
finish
