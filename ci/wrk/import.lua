-- ci/bench-stack's import run: POST /v1/videos with a URL no request has used before, the
-- users taken in turn so that each spends an equal share of its daily quota.
--
-- wrk -s ci/wrk/import.lua URL -- DATA_LUA
--   DATA_LUA returns { tokens = { token, ... } }

dofile("ci/wrk/summary.lua")

local tokens
local sent = 0

function init(args)
   tokens = dofile(args[1]).tokens
end

function request()
   sent = sent + 1
   local token = tokens[(sent + thread_id) % #tokens + 1]
   local body = string.format('{"url":"https://www.youtube.com/watch?v=bench-%d-%d"}', thread_id, sent)
   local headers = {
      Authorization = "Bearer " .. token,
      ["Content-Type"] = "application/json",
   }
   return wrk.format("POST", "/v1/videos", headers, body)
end
