-- wrk script of `make bench`: cycles through the requests of one workload file.
-- Argument 1: the file, one request per line: its `authorization` value (empty: no
-- header), then each further header as a tab and `name: value`.
-- Arguments 2-4 (optional): the method (GET), the path (/v1/invoices), and a file whose
-- contents are every request's body (none).
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
  local method = args[2] or "GET"
  local path = args[3] or "/v1/invoices"
  local body = nil
  if args[4] and args[4] ~= "" then
    local f = assert(io.open(args[4], "rb"))
    body = f:read("*a")
    f:close()
  end
  for line in io.lines(args[1]) do
    local headers = { ["Host"] = "api.example.com" }
    local first = true
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do
      if first then
        if field ~= "" then headers["Authorization"] = field end
        first = false
      else
        local name, value = field:match("^([^:]+): (.*)$")
        if name then headers[name] = value end
      end
    end
    prepared[#prepared + 1] = wrk.format(method, path, headers, body)
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
