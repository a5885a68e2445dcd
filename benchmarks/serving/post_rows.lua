-- wrk script: POST one row per request to the prediction service, cycling through the JSON
-- bodies of a file (one body a line), and print the result as one JSON line.
-- usage: wrk -s post_rows.lua URL -- BODIES_FILE [START]
local bodies = {}
local n = 0
local counter = 0

-- The requests are formatted once, here: per request, wrk only hands over a prepared string (it
-- shares its core with other work on a small machine; Lua formatting each request slowed it).
function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    n = n + 1
    bodies[n] = wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, line)
  end
  f:close()
  counter = tonumber(args[2] or "0")
end

function request()
  counter = counter + 1
  return bodies[(counter % n) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
