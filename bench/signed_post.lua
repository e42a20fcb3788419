-- wrk script: each thread replays its own file of pre-signed webhook bodies (one per request,
-- so every dedupe key is new), counts 202 answers and what they accepted, and prints JSON.
-- BENCH_BODIES=<prefix> (reads <prefix>-<thread>.txt, lines "signature<TAB>body"),
-- BENCH_PATH=/api/webhooks/hubspot/forms, BENCH_DELAY_MS=<mean pause per connection>.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pause > 0 then
  function delay()
    return math.random(0, 2 * pause)
  end
end

function init(args)
  local prefix = os.getenv("BENCH_BODIES")
  local target = os.getenv("BENCH_PATH")
  reqs = {}
  for line in io.lines(prefix .. "-" .. id .. ".txt") do
    local tab = string.find(line, "\t", 1, true)
    reqs[#reqs + 1] = wrk.format("POST", target, {
      ["Content-Type"] = "application/json",
      ["X-HubSpot-Signature"] = string.sub(line, 1, tab - 1),
      ["X-HubSpot-Signature-Version"] = "v1",
    }, string.sub(line, tab + 1))
  end
  idx = 0
  count = #reqs
  accepted = 0
  duplicates = 0
  non202 = 0
  wrapped = 0
end

function request()
  idx = idx + 1
  if idx > #reqs then
    idx = 1
    wrapped = wrapped + 1
  end
  return reqs[idx]
end

function response(status, headers, body)
  if status ~= 202 then
    non202 = non202 + 1
    return
  end
  accepted = accepted + tonumber(string.match(body, '"accepted": (%d+)') or 0)
  duplicates = duplicates + tonumber(string.match(body, '"duplicates": (%d+)') or 0)
end

function done(summary, latency, requests)
  local acc, dup, bad, wrap, sent = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    dup = dup + t:get("duplicates")
    bad = bad + t:get("non202")
    wrap = wrap + t:get("wrapped")
    sent = sent + t:get("idx") + t:get("wrapped") * t:get("count")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "socket_errors": %d, "p50_us": %d, ' ..
    '"p90_us": %d, "p99_us": %d, "max_us": %d, "accepted": %d, "duplicates": %d, ' ..
    '"non202": %d, "wrapped": %d, "sent": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    acc, dup, bad, wrap, sent))
end
