-- bench/serve_single.lua - wrk script of bench/serve.sh: one event per request
-- (POST /v1/events, application/json), paced with wrk's delay() hook.
--
--   wrk -t1 -c24 -d10s --latency -s bench/serve_single.lua URL -- TOKEN EVENTS_FILE 1 EVENTS DELAY_MS
--
-- Same arguments as bench/serve_events.lua (PER_BODY must be 1), plus DELAY_MS: each
-- connection waits that long after an answer before it sends its next request (wrk 4 takes
-- whole milliseconds). Debian's wrk 4.1 has no fixed-rate mode (that is wrk2's -R), so the
-- rate is held by the number of connections: about C / (DELAY_MS + latency + timer slack)
-- requests per second. This is closed loop: a slow answer delays that connection's next
-- request, so a stall is counted once instead of for every request that a fixed schedule
-- would have sent during it (coordinated omission; see bench/serve.sh).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "serve_events.lua")

local base_init = init
local delay_ms = 1

function init(args)
    base_init(args)
    delay_ms = tonumber(args[5]) or 1
end

function delay()
    return delay_ms
end
