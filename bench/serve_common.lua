-- bench/serve_common.lua - shared by the wrk scripts of bench/serve.sh (loaded with dofile).
--
-- Every wrk script here pre-builds its requests in init() (once per wrk thread, from a file)
-- and cycles through them in request(); this file holds the pieces they share and the done()
-- hook, which prints one machine-readable line for bench/serve.sh:
--
--   wrk-result requests=N duration_us=D rps=R p50_us=.. p90_us=.. p99_us=.. p999_us=..
--              max_us=.. err_connect=.. err_read=.. err_write=.. err_status=.. err_timeout=..
--
-- Latencies are wrk's: from the first byte of a request written to the last byte of its
-- answer read, per request, closed loop (see the note on coordinated omission in serve.sh).

local M = {}

-- The first n lines of a file (all when n is nil or 0), as a table of strings.
function M.read_lines(path, n)
    local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
    local out = {}
    for line in f:lines() do
        if line ~= "" then
            out[#out + 1] = line
            if n and n > 0 and #out >= n then break end
        end
    end
    f:close()
    assert(#out > 0, path .. " holds no line")
    return out
end

-- Groups lines into NDJSON bodies of per_body lines each (the last partial group is dropped
-- unless it is the only one), at most max_bodies of them.
function M.bodies(lines, per_body, max_bodies)
    local out = {}
    local i = 1
    while i + per_body - 1 <= #lines and #out < max_bodies do
        out[#out + 1] = table.concat(lines, "\n", i, i + per_body - 1) .. "\n"
        i = i + per_body
    end
    if #out == 0 then out[1] = table.concat(lines, "\n") .. "\n" end
    return out
end

-- Pre-formats one POST per body; returns the table of raw HTTP requests.
-- Every request gets event ids of its own: the daemon answers an id it has seen recently
-- from memory (idempotency) without deciding it again, and a benchmark cycling through the
-- same bodies would measure that instead. A run prefix keeps parts and reruns apart.
M.run_id = string.format("%x", math.random(0, 0xffffff))

-- A body split where each event's own id starts (each line opens with it; user.id is left
-- alone), so that a request is one table.concat (in C) with the unique prefix between.
function M.split_ids(body)
    local parts, start = {}, 1
    local s = "\n" .. body
    while true do
        local a, b = s:find('\n{"id":"', start, true)
        if not a then break end
        parts[#parts + 1] = s:sub(start, a - 1)
        start = b + 1
    end
    parts[#parts + 1] = s:sub(start)
    return parts
end

function M.unique(parts, n)
    return table.concat(parts, '\n{"id":"' .. M.run_id .. string.format(".%x.", n)):sub(2)
end

function M.request(path, content_type, token, body)
    return wrk.format("POST", path, {
        ["Content-Type"] = content_type,
        ["Authorization"] = "Bearer " .. token,
    }, body)
end

function M.requests(path, content_type, token, bodies)
    local headers = {
        ["Content-Type"] = content_type,
        ["Authorization"] = "Bearer " .. token,
    }
    local reqs = {}
    for i, b in ipairs(bodies) do
        reqs[i] = wrk.format("POST", path, headers, b)
    end
    return reqs
end

-- Percentiles of wrk's latency histogram corrected for coordinated omission the way
-- HdrHistogram's recordValueWithExpectedInterval (and wrk2) do it: a request that took v us
-- on a connection meant to send one every `iv` us stands for the requests that an open-loop
-- client would have sent meanwhile and that would have waited v - iv, v - 2 iv, ... us.
local function co_percentiles(latency, iv, ps)
    local pairs_ = {}
    local total = 0
    for k = 1, #latency do
        local v, c = latency(k)
        while v > 0 do
            pairs_[#pairs_ + 1] = {v, c}
            total = total + c
            v = v - iv
        end
    end
    table.sort(pairs_, function(a, b) return a[1] < b[1] end)
    local out, acc, j = {}, 0, 1
    for _, p in ipairs(pairs_) do
        acc = acc + p[2]
        while j <= #ps and acc >= total * ps[j] / 100 do
            out[j] = p[1]
            j = j + 1
        end
    end
    return out
end

function M.done(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        "wrk-result requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d " ..
        "p999_us=%d max_us=%d err_connect=%d err_read=%d err_write=%d err_status=%d " ..
        "err_timeout=%d",
        summary.requests, summary.duration, summary.requests / secs,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, e.connect, e.read, e.write, e.status,
        e.timeout))
    -- WRK_CO_INTERVAL_US (set by bench/serve.sh for the paced run): also print the
    -- corrected percentiles, co_p50_us ... co_p999_us
    local iv = tonumber(os.getenv("WRK_CO_INTERVAL_US") or "")
    if iv and iv > 0 and #latency > 0 then
        local c = co_percentiles(latency, iv, {50, 90, 99, 99.9})
        io.write(string.format(" co_interval_us=%d co_p50_us=%d co_p90_us=%d co_p99_us=%d co_p999_us=%d",
            iv, c[1] or -1, c[2] or -1, c[3] or -1, c[4] or -1))
    end
    io.write("\n")
end

return M
