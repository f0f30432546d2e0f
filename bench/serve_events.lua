-- bench/serve_events.lua - wrk script of bench/serve.sh: POST /v1/events, cycling through
-- pre-built bodies made of consecutive lines of an NDJSON events file.
--
--   wrk -t1 -c8 -d10s --latency -s bench/serve_events.lua URL -- TOKEN EVENTS_FILE PER_BODY BODIES
--
--   TOKEN       bearer token (scope events)
--   EVENTS_FILE NDJSON, one event a line (bench/out/events.ndjson)
--   PER_BODY    events per request: > 1 sends NDJSON (application/x-ndjson, one decision line
--               back per event); 1 sends one event as application/json (one JSON object back)
--   BODIES      distinct request bodies to pre-build (the first PER_BODY * BODIES events)
--
-- No delay() hook here: wrk decides from the script as loaded whether to call it, and
-- having one at all puts a timer between every answer and the next request. The paced
-- variant is bench/serve_single.lua.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "serve_common.lua")

local bodies, ctype, tok, n, i, sent, prebuilt = nil, nil, nil, 0, 0, 0, nil

function init(args)
    local token, file = args[1], args[2]
    local per_body, nbodies = tonumber(args[3]) or 100, tonumber(args[4]) or 2000
    local lines = common.read_lines(file, per_body * nbodies)
    if per_body == 1 then
        bodies, ctype = lines, "application/json"
    else
        bodies, ctype = common.bodies(lines, per_body, nbodies), "application/x-ndjson"
    end
    tok = token
    n = #bodies
    for k = 1, n do
        bodies[k] = common.split_ids(bodies[k])
    end
    math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
    common.run_id = string.format("%x", math.random(0, 0xffffff))
    if per_body == 1 then
        -- One event a request is paced and latency-bound: build every request up front
        -- (300,000, unique ids; 15 s at 20k/s) so the client does no Lua work per request
        -- on the cores it shares with the daemon.
        prebuilt = {}
        for k = 1, 300000 do
            prebuilt[k] = common.request("/v1/events", ctype, tok,
                                         common.unique(bodies[(k - 1) % n + 1], k))
        end
    end
end

function request()
    sent = sent + 1
    if prebuilt then return prebuilt[(sent - 1) % #prebuilt + 1] end
    i = i + 1
    if i > n then i = 1 end
    return common.request("/v1/events", ctype, tok, common.unique(bodies[i], sent))
end

done = common.done
