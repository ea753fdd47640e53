-- wrk script: POST /v1/pay/qr with a unique merchantReferenceNumber per
-- request (so the gateway's idempotency cache never answers for the
-- provider). Every thread gets its own prefix; RUN makes runs distinct.
local threads = {}
local counter = 0
local prefix = ""

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = (os.getenv("RUN") or "R") .. "-" .. tostring(tid) .. "-"
end

request = function()
  counter = counter + 1
  local body = '{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"' .. prefix .. counter .. '"}'
  return wrk.format("POST", "/v1/pay/qr", {["Content-Type"] = "application/json"}, body)
end

-- Non-2xx answers and socket errors make a throttled or failing run
-- visible (no per-response Lua callback: it would slow wrk down).
done = function(summary, latency, requests)
  io.write(string.format("non-2xx-or-errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
