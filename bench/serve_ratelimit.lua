-- bench/serve_ratelimit.lua - wrk script of bench/serve.sh: POST /v1/ratelimit with NDJSON
-- bodies of rate-limit requests (redis-cell CL.THROTTLE semantics), one key a line taken from
-- a key-stream file, cycling through the pre-built bodies.
--
--   wrk -t1 -c8 -d10s --latency -s bench/serve_ratelimit.lua URL -- TOKEN KEYS_FILE PER_BODY BURST RATE PERIOD
--
--   KEYS_FILE  one key a line (bench/serve.sh writes it; Redis gets the same keys)
--   PER_BODY   requests per HTTP request (one answer line back for each)
--   BURST RATE PERIOD   the limit of every key: `burst` (redis-cell's max_burst, so burst + 1
--              at once), `rate` per `period` seconds; cost 1
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "serve_common.lua")

local reqs, n, i = nil, 0, 0

function init(args)
    local token, file = args[1], args[2]
    local per_body = tonumber(args[3]) or 100
    local burst, rate, period = args[4] or "9", args[5] or "10", args[6] or "60"
    local keys = common.read_lines(file)
    local tail = '","burst":' .. burst .. ',"rate":' .. rate .. ',"period":' .. period .. ',"cost":1}'
    local lines = {}
    for k = 1, #keys do
        lines[k] = '{"key":"' .. keys[k] .. tail
    end
    local bodies = common.bodies(lines, per_body, math.huge)
    reqs = common.requests("/v1/ratelimit", "application/x-ndjson", token, bodies)
    n = #reqs
end

function request()
    i = i + 1
    if i > n then i = 1 end
    return reqs[i]
end

done = common.done
