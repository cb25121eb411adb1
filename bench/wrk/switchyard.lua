-- wrk script for the Switchyard bench (bench/bench.py sets the variables).
--   BENCH_METHOD   GET or POST
--   BENCH_PATH     request path
--   BENCH_TOKENS   file of access tokens, one a line (sent as Bearer, rotating)
--   BENCH_BODY     JSON body for POST
--   BENCH_KEYS     "1": a fresh Idempotency-Key on every request
--   BENCH_NONCE    unique per run, so keys never repeat across runs
--   BENCH_ACCEPTED "1": also time each 2xx answer alone (paired with its request
--                  by the X-Request-Id the gateway echoes), so shed 503s, which
--                  come back fast, do not flatter the percentiles
-- done() prints one line "BENCH_RESULT {json}" with the counts by status and
-- the latency percentiles (microseconds).

local threads = {}
local counter = 0

-- A monotonic clock in microseconds (wrk's Lua is LuaJIT: ffi is there).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1e6 + tonumber(timespec.tv_nsec) / 1e3
end

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  method = os.getenv("BENCH_METHOD") or "GET"
  path = os.getenv("BENCH_PATH") or "/"
  body = os.getenv("BENCH_BODY")
  fresh_keys = os.getenv("BENCH_KEYS") == "1"
  nonce = os.getenv("BENCH_NONCE") or "0"
  tokens = {}
  local file = os.getenv("BENCH_TOKENS")
  if file and file ~= "" then
    for line in io.lines(file) do
      if line ~= "" then table.insert(tokens, line) end
    end
  end
  next_token = (id * 7919) % math.max(#tokens, 1)
  counts = {}
  timed = os.getenv("BENCH_ACCEPTED") == "1"
  sent = {}
  accepted = {}
  sequence = 0
  base_headers = {}
  if body then base_headers["Content-Type"] = "application/json" end
end

function request()
  local headers = {}
  for k, v in pairs(base_headers) do headers[k] = v end
  if #tokens > 0 then
    next_token = next_token % #tokens + 1
    headers["Authorization"] = "Bearer " .. tokens[next_token]
  end
  if fresh_keys then
    counter = counter + 1
    headers["Idempotency-Key"] = string.format("wrk-%s-%d-%d", nonce, id, counter)
  end
  if timed then
    sequence = sequence + 1
    local request_id = string.format("wrk-%s-%d-%d", nonce, id, sequence)
    headers["X-Request-Id"] = request_id
    sent[request_id] = now_us()
  end
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
  if timed then
    local request_id = headers["X-Request-Id"]
    local started = request_id and sent[request_id]
    if started then
      sent[request_id] = nil
      if status >= 200 and status < 300 then
        table.insert(accepted, now_us() - started)
      end
    end
  end
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.ceil(#sorted * p / 100))]
end

function done(summary, latency, requests)
  local statuses = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    if c then
      for k, v in pairs(c) do statuses[k] = (statuses[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(statuses) do table.insert(parts, string.format('"%s": %d', k, v)) end
  local all_accepted = {}
  for _, thread in ipairs(threads) do
    for _, us in ipairs(thread:get("accepted") or {}) do table.insert(all_accepted, us) end
  end
  table.sort(all_accepted)
  local accepted_json = string.format(
    '{"count": %d, "p50_us": %d, "p99_us": %d, "p999_us": %d}', #all_accepted,
    percentile(all_accepted, 50), percentile(all_accepted, 99), percentile(all_accepted, 99.9))
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"p999_us": %d, "max_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d, "statuses": {%s}, "accepted": %s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max, e.connect, e.read, e.write, e.timeout,
    table.concat(parts, ", "), accepted_json))
end
