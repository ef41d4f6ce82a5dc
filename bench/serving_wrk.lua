-- wrk script for bench/serving_bench.py: rotate over a request file, count cache hits.
--
--   wrk -t1 -c8 -d600s -s bench/serving_wrk.lua URL -- REQUEST_FILE QUOTA [THINK_MS]
--
-- REQUEST_FILE: one request a line, "<path>\t<Cookie header>" (empty cookie: anonymous).
-- QUOTA: responses after which the run ends (0: run for -d). Reaching it prints
-- "bench quota" and stops the thread; the Python driver then sends SIGINT so wrk's
-- summary covers only the quota. THINK_MS > 0: each connection waits a random
-- (exponential, that mean) time before each request: clients with think time instead of
-- a closed loop at full speed. Run with one thread: counters are per thread.
-- done() prints "bench <key> <value>" lines (latencies in microseconds).

local requests = {}
local position = 0
local quota = 0
-- Globals, not locals: done() reads them from each thread with thread:get().
responses = 0
hits = 0
misses = 0
not_ok = 0

function init(args)
  for line in io.lines(args[1]) do
    local path, cookie = line:match("^([^\t]*)\t?(.*)$")
    local headers = {}
    if cookie ~= "" then headers["Cookie"] = cookie end
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
  quota = tonumber(args[2]) or 0
  local think = tonumber(args[3]) or 0
  if think > 0 then
    math.randomseed(943)
    function delay()
      return -think * math.log(1 - math.random())
    end
  end
end

function request()
  -- Past the quota (requests still in flight) start over at the top of the file.
  position = position % #requests + 1
  return requests[position]
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then not_ok = not_ok + 1 end
  local cache = headers["X-Recommendations-Cache"] or headers["x-recommendations-cache"]
  if cache == "hit" then hits = hits + 1 elseif cache == "miss" then misses = misses + 1 end
  if quota > 0 and responses == quota then
    io.write("bench quota\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, _)
  local totals = { hits = 0, misses = 0, not_ok = 0, responses = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do
      totals[key] = totals[key] + (thread:get(key) or 0)
    end
  end
  local errors = summary.errors
  io.write(string.format("bench requests %d\n", summary.requests))
  io.write(string.format("bench duration_us %d\n", summary.duration))
  io.write(string.format("bench socket_errors %d\n",
    errors.connect + errors.read + errors.write + errors.timeout))
  for key, value in pairs(totals) do
    io.write(string.format("bench %s %d\n", key, value))
  end
  for _, p in ipairs({ 50, 95, 99 }) do
    io.write(string.format("bench p%d_us %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("bench max_us %d\n", latency.max))
  io.write(string.format("bench mean_us %.1f\n", latency.mean))
end
