-- Shared by ci/bench-stack's wrk runs: numbers each thread (`thread_id`, and a distinct random
-- seed) and, when the run ends, prints one line `wrk-summary {json}` with the counts and the
-- latency percentiles in microseconds, for the script to parse. Used alone for a static
-- request (GET /healthz); read-mix.lua and import.lua load it first.

local threads = {}

function setup(thread)
   thread:set("thread_id", #threads)
   thread:set("seed", 7919 * (#threads + 1))
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   -- Responses a script's response() saw outside 2xx (wrk's own count only sees >= 400).
   local non2xx = 0
   for _, thread in ipairs(threads) do
      non2xx = non2xx + (thread:get("non2xx") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'wrk-summary {"requests":%d,"duration_us":%d,"mean_us":%.1f,"p50_us":%d,"p90_us":%d,'
         .. '"p99_us":%d,"max_us":%d,"status_errors":%d,"non2xx":%d,"connect_errors":%d,'
         .. '"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
      summary.requests, summary.duration, latency.mean, latency:percentile(50),
      latency:percentile(90), latency:percentile(99), latency.max, e.status, non2xx,
      e.connect, e.read, e.write, e.timeout))
end
