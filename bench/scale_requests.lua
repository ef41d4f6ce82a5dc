-- wrk script of bench/scale_bench.py: replays `path<TAB>cookie` lines from the file named
-- after `--`, each thread from its own offset, and prints the latency summary as JSON.

local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

local requests = {}
local next_line = 0

function init(args)
  for line in io.lines(args[1]) do
    local path, cookie = line:match("^([^\t]+)\t(.*)$")
    if path then
      requests[#requests + 1] = wrk.format("GET", path, { ["Cookie"] = cookie })
    end
  end
  next_line = ((offset or 0) * 7919) % #requests
end

function request()
  next_line = next_line % #requests + 1
  return requests[next_line]
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    'SCALE_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean))
end
