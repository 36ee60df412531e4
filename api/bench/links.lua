-- wrk script: GET /v1/links/{user_id} over the linked users of a seeded
-- database. The requests file (written by load.sh) defines `key` and
-- `users`; reads change nothing, so users are reused round-robin.
dofile(os.getenv("REQUESTS") or "links-requests.lua")

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
  i = tid
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  local u = users[(i % #users) + 1]
  i = i + 1
  return wrk.format("GET", "/v1/links/" .. u)
end

statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do io.write(string.format("status %d: %d\n", k, v)) end
  end
end
