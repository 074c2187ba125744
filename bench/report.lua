-- wrk script: cycles through requests ("kind<TAB>path<TAB>body", one per line of $BODIES)
-- and prints the figures
-- as one JSON line at the end.
local bodies = {}
local index = 0
local path = os.getenv("BODIES")
if path then
  for line in io.lines(path) do bodies[#bodies + 1] = line end
end
local extra = os.getenv("HEADER")
-- Each wrk thread has its own Lua state: give each its own share of the lines, so that no two
-- requests carry the same body (a date would be held twice, an event delivered twice).
local stride = tonumber(os.getenv("THREADS") or "1")
local next_thread_id = 0

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
end

function init(args)
  index = thread_id or 0
end

request = function()
  local headers = {}
  if extra then
    local name, value = extra:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  if #bodies == 0 then
    return wrk.format("GET", nil, headers)
  end
  local line = bodies[index % #bodies + 1]
  index = index + stride
  local kind, path, body = line:match("^(%S+)\t(%S+)\t(.*)$")
  if kind == "webhook" then
    local signature, payload = body:match("^(%S+)\t(.*)$")
    headers["Content-Type"] = "application/json"
    headers["Stripe-Signature"] = signature
    return wrk.format("POST", path, headers, payload)
  end
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  return wrk.format("POST", path, headers, body)
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "non2xx3xx": %d, "socket_errors": %d, '
      .. '"bodies_reused": %s, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status, errors,
    tostring(#bodies > 0 and summary.requests > #bodies),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
