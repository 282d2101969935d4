-- wrk script of `make bench`: cycles through the requests of one workload file.
-- Argument 1: the file, one `authorization` value per line (empty line: no header).
-- Each wrk thread starts at its own offset, so threads do not send the same token at once.
-- done() prints one JSON line the runner reads (latencies in microseconds).

local prepared = {}
local position = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end

function init(args)
  local headers_base = { ["Host"] = "api.example.com" }
  for line in io.lines(args[1]) do
    local headers = { ["Host"] = headers_base["Host"] }
    if line ~= "" then headers["Authorization"] = line end
    prepared[#prepared + 1] = wrk.format("GET", "/v1/invoices", headers)
  end
  if #prepared == 0 then error("no requests in " .. args[1]) end
  position = (offset or 0) % #prepared
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
