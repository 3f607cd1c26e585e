-- wrk script of the benchmark suite: the request to send, optional pipelining and a
-- request budget, and a machine-readable summary. Arguments (after wrk's "--"):
--   METHOD BODY DEPTH LIMIT [HEADER: VALUE ...]
-- DEPTH > 1 pipelines DEPTH copies of the request per write. LIMIT > 0 stops each wrk
-- thread after that many responses (the run then ends before its duration). The
-- summary is one line "WRK {json}" with latencies in microseconds.

local depth, limit, seen = 1, 0, 0

function init(args)
   local method = args[1] or "GET"
   local body = args[2] or ""
   depth = tonumber(args[3] or "1")
   limit = tonumber(args[4] or "0")
   local headers = {}
   for i = 5, #args do
      local k, v = args[i]:match("^([^:]+):%s*(.*)$")
      if k then headers[k] = v end
   end
   if body == "" then body = nil end
   local req = string.rep(wrk.format(method, nil, headers, body), depth)
   -- A request function equal to wrk.request makes the request static: wrk builds it
   -- once instead of calling into Lua per request. Without a budget, no response()
   -- either, so wrk does not collect each response's headers and body for Lua.
   wrk.request = function() return req end
   request = wrk.request
   if limit == 0 then response = nil end
end

function response(status, headers, body)
   if limit > 0 then
      seen = seen + 1
      if seen >= limit then wrk.thread:stop() end
   end
end

local points = {}
for p = 1, 99 do points[#points + 1] = p end
for _, p in ipairs({99.5, 99.9, 99.99}) do points[#points + 1] = p end

function done(summary, latency, requests)
   local e = summary.errors
   local cdf = {}
   for _, p in ipairs(points) do
      cdf[#cdf + 1] = string.format("[%g,%d]", p, latency:percentile(p))
   end
   io.write(string.format(
      'WRK {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
      '"write_errors":%d,"non2xx":%d,"timeouts":%d,"p50":%d,"p99":%d,"p999":%d,' ..
      '"max":%d,"cdf":[%s]}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
      e.timeout, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
      latency.max, table.concat(cdf, ",")))
end
