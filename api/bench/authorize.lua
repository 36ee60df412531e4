-- wrk script: POST /v1/authorize with a different prepared BUID+PIN per
-- request. requests.lua (written by ./api/bench/seed) defines `key` and
-- `bodies`. Each wrk thread takes its own slice of the bodies.
dofile(os.getenv("REQUESTS") or "requests.lua")

local threads = {}
local counter = 0

-- PORTS=a,b (one wrk for several instances): thread i sends to the
-- (i mod n)-th port on 127.0.0.1, so the load generator is the same
-- process, with the same threads, whatever the number of instances.
local ports = {}
for p in string.gmatch(os.getenv("PORTS") or "", "[^,]+") do table.insert(ports, p) end

function setup(thread)
  if #ports > 0 then
    thread.addr = wrk.lookup("127.0.0.1", ports[(counter % #ports) + 1])[1]
  end
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("THREADS") or "2")
  per = math.floor(#bodies / nthreads)
  first = tid * per
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
