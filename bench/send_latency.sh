#!/bin/bash
# send_latency.sh - /send latency with N registered users (issue 20: the 202
# arrives in constant time, the fan-out runs in the background in chunks),
# side by side with the time to register the users, the fan-out's total
# time (until its last copy is made, and until the last copy is sent) and
# warmup-service's RSS during the fan-out.
#
# The users are imported once (POST /users/import, events drained on the dev
# broker); one warmup-service (CUSTOM client to Postfix smtp-sink, WORKERS=8)
# then takes three /send: the first two are paused at once (their 202 is
# the measure; their fan-out waits), the third runs to the end. RSS is
# sampled every 200 ms from /proc while the third fans out; the fan-out's
# progress is read from the database beside the service (WAL reader).
#
#   SIZE=small  N=20000 (default N=1000000)
#   N=...       users
#   FANOUT_CHUNK=10000  users per fan-out transaction
#   TIMEOUT=1800        seconds the third broadcast may take
# Also: BUILD_DIR, KEEP_TMP=1, BENCH_LOG_LEVEL (see common.sh).
. "$(dirname "$0")/common.sh"
if [ "${SIZE:-}" = small ]; then : "${N:=20000}"; else : "${N:=1000000}"; fi
: "${FANOUT_CHUNK:=10000}" "${TIMEOUT:=1800}"
need smtp-sink
need_bins broker warmup

machine_line
note "send_latency: N=$N FANOUT_CHUNK=$FANOUT_CHUNK; temp dir $BTMP"
start_broker
seed_users "$N"
note "imported $N users in $(fmt_s "$IMPORT_MS") s (events drained after $(fmt_s "$DRAIN_MS") s)"

SP=$(freeport)
start_sink sink "$SP"
copy_db seed run
WP=$(freeport)
W=http://127.0.0.1:$WP
start_warmup run "$WP" CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM SMTP_HOST=127.0.0.1 SMTP_PORT="$SP" \
  SMTP_TLS=none WORKERS=8 MESSAGE_ID_DOMAIN=sender.bench.test FANOUT_CHUNK="$FANOUT_CHUNK"
PID=$run_PID
idle_kb=$(awk '/VmRSS/ { print $2 }' "/proc/$PID/status")
send_json >"$BTMP/send.json"

# post_send - POST /send; prints "ms email_id recipients"
post_send() {
  local out
  out=$(curl -s -w ' %{time_total}' -H 'Content-Type: application/json' --data-binary @"$BTMP/send.json" "$W/send")
  $PY -c 'import json,sys; b, t = sys.argv[1].rsplit(" ", 1); j = json.loads(b); print("%.1f %d %d" % (float(t) * 1000, j["email_id"], j["recipients"]))' "$out"
}
lat=()
for i in 1 2; do
  read -r ms id rc < <(post_send)
  curl -s -X POST "$W/emails/$id/pause" >/dev/null
  [ "$rc" = "$N" ] || die "/send answered recipients=$rc, want $N"
  lat+=("$ms")
done

# the third: its fan-out and sending watched to the end
$PY - "$W" "$PID" "$BTMP/run/warmup.db" "$BTMP/send.json" "$N" "$TIMEOUT" >"$BTMP/watch.out" <<'PY' || die "the broadcast did not finish: $(tail -3 "$BTMP/watch.out")"
import json, sqlite3, sys, time, urllib.request
w, pid, db, body, n, timeout = sys.argv[1], sys.argv[2], sys.argv[3], open(sys.argv[4], "rb").read(), int(sys.argv[5]), float(sys.argv[6])
def rss():
    d = {}
    for line in open(f"/proc/{pid}/status"):
        k, v = line.split(":", 1)
        d[k] = int(v.split()[0]) if v.strip().endswith("kB") else 0
    return d["VmRSS"], d["VmHWM"]
req = urllib.request.Request(w + "/send", data=body, headers={"Content-Type": "application/json"})
t0 = time.monotonic()
j = json.load(urllib.request.urlopen(req))
lat = (time.monotonic() - t0) * 1000
eid = j["email_id"]
c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
peak = 0; samples = []; made_ms = None; sent_ms = None; ahead_max = 0
while time.monotonic() - t0 < timeout:
    r, hwm = rss(); peak = max(peak, r)
    cur, mx, left = c.execute("SELECT fan_cursor, fan_max, fan_left FROM emails WHERE id = ?", (eid,)).fetchone()
    npend = c.execute("SELECT n_pending FROM emails WHERE id = ?", (eid,)).fetchone()[0]
    ahead_max = max(ahead_max, npend)
    t = (time.monotonic() - t0) * 1000
    samples.append((t, cur, r))
    if made_ms is None and cur == mx and left == 0:
        made_ms = t
    p = json.load(urllib.request.urlopen(f"{w}/emails/{eid}"))["progress"]
    if p["sent"] + p["dead"] >= n:
        sent_ms = t
        break
    time.sleep(0.2)
if sent_ms is None:
    print("timeout"); sys.exit(1)
def at(frac):
    for t, cur, r in samples:
        if cur >= frac * n:
            return r
    return samples[-1][2]
print(f"lat_ms={lat:.1f}\nrecipients={j['recipients']}\nmade_ms={made_ms:.0f}\nsent_ms={sent_ms:.0f}")
print(f"rss_peak_kb={peak}\nrss_10_kb={at(0.1)}\nrss_50_kb={at(0.5)}\nrss_90_kb={at(0.9)}\nhwm_kb={rss()[1]}\nahead_max={ahead_max}")
PY
W_OUT=$BTMP/watch.out
lat+=("$(kv "$W_OUT" lat_ms)")
[ "$(kv "$W_OUT" recipients)" = "$N" ] || die "the third /send answered recipients=$(kv "$W_OUT" recipients)"
made=$(kv "$W_OUT" made_ms)
sent=$(kv "$W_OUT" sent_ms)
got=$(sink_settle sink "$N" 30)
[ "$got" -ge "$N" ] || die "smtp-sink counted $got messages, want $N"
stop_named run
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo "send_latency N=$N FANOUT_CHUNK=$FANOUT_CHUNK"
printf '%-48s %s\n' "register $N users (POST /users/import)" "$(fmt_s "$IMPORT_MS") s"
printf '%-48s %s\n' "/send latency, 3 sends (ms)" "${lat[*]}"
printf '%-48s %s\n' "fan-out: every copy made" "$(fmt_s "$made") s after the 202"
printf '%-48s %s\n' "broadcast: every copy sent" "$(fmt_s "$sent") s ($(fmt_rate "$N" "$sent") copies/s)"
printf '%-48s %s\n' "most copies queued ahead of the sender" "$(kv "$W_OUT" ahead_max)"
printf '%-48s %s\n' "RSS idle / at 10% / 50% / 90% of the fan-out, MB" \
  "$(mb "$idle_kb") / $(mb "$(kv "$W_OUT" rss_10_kb)") / $(mb "$(kv "$W_OUT" rss_50_kb)") / $(mb "$(kv "$W_OUT" rss_90_kb)")"
printf '%-48s %s\n' "RSS peak sampled during the fan-out, MB" "$(mb "$(kv "$W_OUT" rss_peak_kb)")"
printf '%-48s %s\n' "VmHWM at the end (whole life), MB" "$(mb "$(kv "$W_OUT" hwm_kb)")"
echo "(reference: before the background fan-out, /send took 0.8-1.0 s with 1M users and wrote 274 MB of queue rows first)"
worst=$(printf '%s\n' "${lat[@]}" | sort -n | tail -1)
summary "/send latency N=$N" "max $worst ms of 3; RSS $(mb "$(kv "$W_OUT" rss_10_kb)")-$(mb "$(kv "$W_OUT" rss_90_kb)") MB" \
  "202 in ms (was 0.8-1.0 s at 1M)" "$(verdict "$worst <= 100")"
