-- wrk script for bench/load/run.sh: a mix of GET /v1/jobs/{id} (ids of finished jobs, from
-- the file named by $HL_IDS) and small POST /v1/cluster with Prefer: wait=10 (12 points of
-- dimension 8, fresh random values per request, so each one is computed, not a cache hit).
-- $HL_POST_PERCENT (default 20) sets the share of POSTs. Counts every status per thread;
-- done() prints them, and 429s apart (documented back-pressure, not errors).
local ids = {}
local post_percent = tonumber(os.getenv("HL_POST_PERCENT") or "20")
local threads = {}

local f = assert(io.open(os.getenv("HL_IDS"), "r"))
for line in f:lines() do
  if #line > 0 then ids[#ids + 1] = line end
end
f:close()
assert(#ids > 0, "no job ids in $HL_IDS")

function setup(thread)
  thread:set("tid", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
  counts = {}
  posts, gets = 0, 0
end

local function body()
  local rows = {}
  for i = 1, 12 do
    local v = {}
    for d = 1, 8 do v[d] = string.format("%.4f", math.random() * 2 - 1) end
    rows[i] = "[" .. table.concat(v, ",") .. "]"
  end
  return '{"embeddings":[' .. table.concat(rows, ",") .. ']}'
end

function request()
  if math.random(100) <= post_percent then
    posts = posts + 1
    return wrk.format("POST", "/v1/cluster",
      {["Content-Type"] = "application/json", ["Prefer"] = "wait=10"}, body())
  end
  gets = gets + 1
  return wrk.format("GET", "/v1/jobs/" .. ids[math.random(#ids)], nil, nil)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total, posts_all, gets_all = {}, 0, 0
  for _, t in ipairs(threads) do
    posts_all = posts_all + t:get("posts")
    gets_all = gets_all + t:get("gets")
    local c = t:get("counts")
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
  end
  local parts, bad, n429 = {}, 0, 0
  for k, v in pairs(total) do
    parts[#parts + 1] = string.format('"%d":%d', k, v)
    if k == 429 then n429 = n429 + v elseif k >= 400 then bad = bad + v end
  end
  table.sort(parts)
  io.write(string.format(
    'HL_RESULT {"requests":%d,"duration_s":%.1f,"rps":%.1f,"sent_posts":%d,"sent_gets":%d,' ..
    '"statuses":{%s},"errors_non_429":%d,"status_429":%d,"socket_errors":%d,' ..
    '"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    posts_all, gets_all, table.concat(parts, ","), bad, n429,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3))
end
