#!/usr/bin/env python3
"""watch_send.py URL PID N OUT [options] - one broadcast, timed.

POSTs /send with the body in --body (JSON file), then polls GET /emails/{id}
on one keep-alive connection and reads /proc/PID/status (VmRSS, VmHWM) at
every poll, until progress sent >= N (or sent+dead >= N: the run is then
reported as broken), or for --duration seconds when given.

Writes OUT as key=value lines:
  email_id, wall_post (time.time() just before the POST), post_ms (the POST's
  own latency), done_ms (first poll that saw sent >= N, relative to the
  POST's start; empty when not reached), sent, dead, failed, pending,
  rss_max_kb (largest VmRSS sampled), hwm_kb (VmHWM at the end),
  rss_at_tenth_kb (VmRSS at the first sample with sent >= N/10),
  rss_end_kb
and OUT.samples: "t_ms sent rss_kb hwm_kb" per poll (t relative to the POST).
Exit status 1 when the broadcast did not finish (timeout, dead letters).
"""
import argparse
import http.client
import json
import sys
import time


def status_kb(pid):
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("pid", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("out")
    ap.add_argument("--body", required=True)
    ap.add_argument("--poll", type=float, default=0.02, help="seconds between progress polls")
    ap.add_argument("--rss-every", type=float, default=0.1, help="seconds between RSS samples")
    ap.add_argument("--duration", type=float, default=0, help="watch this long instead of until sent=N")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()

    host, port = a.url.replace("http://", "").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = open(a.body, "rb").read()
    out = {}
    samples = []
    wall_post = time.time()
    t0 = time.monotonic()
    conn.request("POST", "/send", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    post_ms = (time.monotonic() - t0) * 1000
    if r.status != 202:
        print(f"watch_send: POST /send -> {r.status} {data[:300]!r}", file=sys.stderr)
        return 1
    eid = json.loads(data)["email_id"]
    out.update(email_id=eid, wall_post=f"{wall_post:.6f}", post_ms=f"{post_ms:.1f}")
    done_ms = None
    last_rss_t = -1e9
    rss_max = 0
    rss_tenth = ""
    p = {}
    rc = 0
    while True:
        now = time.monotonic()
        t_ms = (now - t0) * 1000
        conn.request("GET", f"/emails/{eid}")
        r = conn.getresponse()
        j = json.loads(r.read())
        p = j["progress"]
        sent = p["sent"]
        if now - last_rss_t >= a.rss_every or sent >= a.n:
            rss, hwm = status_kb(a.pid)
            last_rss_t = now
            rss_max = max(rss_max, rss)
            if rss_tenth == "" and sent >= a.n / 10:
                rss_tenth = rss
            samples.append((t_ms, sent, rss, hwm))
        if a.duration:
            if t_ms >= a.duration * 1000:
                break
        elif sent >= a.n:
            done_ms = t_ms
            break
        elif sent + p["dead"] >= a.n:
            print(f"watch_send: broadcast ended with dead letters: {p}", file=sys.stderr)
            rc = 1
            break
        if t_ms > a.timeout * 1000:
            print(f"watch_send: timeout after {a.timeout}s, progress {p}", file=sys.stderr)
            rc = 1
            break
        time.sleep(a.poll)
    rss, hwm = status_kb(a.pid)
    out.update(done_ms="" if done_ms is None else f"{done_ms:.1f}", sent=p.get("sent", 0),
               dead=p.get("dead", 0), failed=p.get("failed", 0), pending=p.get("pending", 0),
               rss_max_kb=max(rss_max, rss), hwm_kb=hwm, rss_at_tenth_kb=rss_tenth,
               rss_end_kb=rss)
    with open(a.out, "w") as f:
        for k, v in out.items():
            f.write(f"{k}={v}\n")
    with open(a.out + ".samples", "w") as f:
        for s in samples:
            f.write("%.1f %d %d %d\n" % s)
    return rc


if __name__ == "__main__":
    sys.exit(main())
