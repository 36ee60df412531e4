-- wrk script: POST /v1/authorize with a different prepared BUID+PIN per
-- request. requests.lua (written by ./api/bench/seed) defines `key` and
-- `bodies`. Each wrk thread takes its own slice of the bodies; with
-- PARTS=n and PART=0..n-1 (several wrk processes at once, one per
-- instance), each process takes its own n-th of them first.
dofile(os.getenv("REQUESTS") or "requests.lua")

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("THREADS") or "2")
  local parts = tonumber(os.getenv("PARTS") or "1")
  local part = tonumber(os.getenv("PART") or "0")
  per = math.floor(#bodies / (nthreads * parts))
  first = (part * nthreads + tid) * per
  i = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  local b = bodies[first + (i % per) + 1]
  i = i + 1
  return wrk.format(nil, "/v1/authorize", nil, b)
end

statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do io.write(string.format("status %d: %d\n", k, v)) end
    local sent, share = t:get("i"), t:get("per")
    if sent > share then io.write(string.format("reused %d\n", sent - share)) end
  end
end
