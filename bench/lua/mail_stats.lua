-- mail_stats.lua - wrk script: GET /mail_stats?email_id=<1..EMAILS> (random).
-- DELAY_MS (environment): wait this long before each request of a connection,
-- to pace the load (wrk has no rate option; wrk2 is not packaged). done()
-- prints one "BENCH key=value ..." line.
local threads = {}
local emails = tonumber(os.getenv("EMAILS") or "100")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(os.time() + tid * 7919)
  c200 = 0
  cother = 0
end

function request()
  return wrk.format("GET", "/mail_stats?email_id=" .. math.random(1, emails))
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function response(status, headers, body)
  if status == 200 then
    c200 = c200 + 1
  else
    cother = cother + 1
    if cother <= 3 then io.stderr:write("mail_stats.lua: status " .. status .. " " .. body .. "\n") end
  end
end

function done(summary, latency, requests)
  local s200, sother = 0, 0
  for _, t in ipairs(threads) do
    s200 = s200 + t:get("c200")
    sother = sother + t:get("cother")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d c200=%d cother=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d\n",
    summary.requests, summary.duration, s200, sother, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.status + e.timeout))
end
