-- bench/redis_gcra.lua - the GCRA rate limiter as a Redis script, the peer of whiply's
-- POST /v1/ratelimit in bench/serve.sh.
--
-- The usual Redis GCRA script (as in go-redis/redis_rate, or redis-cell's CL.THROTTLE done
-- in Lua): one string key per limited key holding its theoretical arrival time (TAT), read
-- with GET and written with SET ... PX so that an idle key expires when its bucket is full
-- again; "now" is the server's TIME. The semantics are redis-cell's and whiply's
-- (src/state/gcra.c): a limit of `rate` per `period` seconds with `burst` = max_burst, so
-- burst + 1 requests pass at once; time is scaled by `rate` (ms * rate) so the arithmetic is
-- exact integers (all below 2^53 in Lua's doubles), like whiply's.
--
--   SCRIPT LOAD (this file)  ->  sha
--   EVALSHA sha 1 KEY BURST RATE PERIOD COST [TALLY]
--
-- Answer, like CL.THROTTLE: {limited (0 allowed, 1 limited), limit, remaining,
-- retry_after (seconds, -1 when allowed), reset_after (seconds)}. TALLY = 1 also counts the
-- answer in the keys tally:allowed / tally:limited (bench/serve.sh's agreement pass only;
-- the timed pass sends 0, and those keys are not declared, so this is for a single
-- non-cluster Redis).
local key = KEYS[1]
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local cost = tonumber(ARGV[4]) or 1
local tally = ARGV[5] == "1"

local limit = burst + 1
local t = redis.call("TIME")
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local T = period * 1000 -- emission interval, in scaled time (ms * rate)
local dvt = T * limit   -- delay variation tolerance
local now = now_ms * rate

local tat = tonumber(redis.call("GET", key) or "0") or 0
if tat < now then tat = now end
local new_tat = tat + T * cost
local allow_at = new_tat - dvt

if now < allow_at then
    local rem = math.floor((now - (tat - dvt)) / T)
    if rem < 0 then rem = 0 end
    local retry_after = -1
    if cost <= limit then retry_after = math.ceil((allow_at - now) / rate / 1000) end
    if tally then redis.call("INCR", "tally:limited") end
    return {1, limit, rem, retry_after, math.ceil((tat - now) / rate / 1000)}
end

local reset_ms = math.ceil((new_tat - now) / rate)
if reset_ms > 0 then
    redis.call("SET", key, string.format("%.0f", new_tat), "PX", reset_ms)
end
if tally then redis.call("INCR", "tally:allowed") end
return {0, limit, math.floor((now - allow_at) / T), -1, math.ceil(reset_ms / 1000)}
