-- wrk script for POST /api/v1/publish with a small JSON body on every request (keep-alive).
--   wrk -t2 -c64 -d10s --latency -s bench/http/publish.lua http://127.0.0.1:8080
-- Environment: TOPIC (default bench/http), QOS (0), RETAIN (false).
local topic = os.getenv("TOPIC") or "bench/http"
local qos = os.getenv("QOS") or "0"
local retain = os.getenv("RETAIN") or "false"
wrk.method = "POST"
wrk.path = "/api/v1/publish"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"topic":"' .. topic .. '","payload":"hello from wrk","qos":' .. qos ..
           ',"retain":' .. retain .. '}'

-- wrk counts answers outside 2xx/3xx; print them so a run of errors is visible. (No
-- response() callback: it would run Lua for every answer and slow wrk down.)
function done(summary, latency, requests)
  io.write("non-2xx/3xx: ", summary.errors.status, "\n")
end
