-- register.lua - wrk script: POST /register with a unique address per request.
-- Each wrk thread has its own prefix (t<thread>), each request its own number,
-- and RUN (environment, default: the time) keeps runs apart. done() prints one
-- "BENCH key=value ..." line with the status counts and latency percentiles.
local threads = {}
local run = os.getenv("RUN") or tostring(os.time())

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  n = 0
  c2xx = 0
  c409 = 0
  cother = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local body = string.format('{"name":"Bench %d","email_id":"r%s.t%d.%d@d%d.bench.test"}',
    n, run, tid, n, n % 50)
  return wrk.format("POST", "/register", nil, body)
end

function response(status, headers, body)
  if status == 201 then
    c2xx = c2xx + 1
  elseif status == 409 then
    c409 = c409 + 1
  else
    cother = cother + 1
    if cother <= 3 then io.stderr:write("register.lua: status " .. status .. " " .. body .. "\n") end
  end
end

function done(summary, latency, requests)
  local s2xx, s409, sother = 0, 0, 0
  for _, t in ipairs(threads) do
    s2xx = s2xx + t:get("c2xx")
    s409 = s409 + t:get("c409")
    sother = sother + t:get("cother")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d c201=%d c409=%d cother=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d\n",
    summary.requests, summary.duration, s2xx, s409, sother, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.status + e.timeout))
end
