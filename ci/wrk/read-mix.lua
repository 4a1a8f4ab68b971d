-- ci/bench-stack's read-heavy mix: each request takes a random seeded user and one of its
-- dashboard (40 %), a page of its video list (30 %), a video's status (20 %) or its quota
-- (10 %); delay() paces each connection to one request per DELAY_MS on average.
--
-- wrk -s ci/wrk/read-mix.lua URL -- DATA_LUA DELAY_MS
--   DATA_LUA returns { users = { { token =, project =, videos = {ids}, cursors = {""|cursor} } } }

dofile("ci/wrk/summary.lua")

local users, delay_ms
-- Thread globals read by summary.lua's done().
non2xx = 0

function init(args)
   users = dofile(args[1]).users
   delay_ms = tonumber(args[2])
   math.randomseed(seed)
end

local function pick(list)
   return list[math.random(#list)]
end

function request()
   local user = pick(users)
   local headers = { Authorization = "Bearer " .. user.token }
   local roll = math.random(100)
   local path
   if roll <= 40 then
      path = "/v1/projects/" .. user.project .. "/dashboard"
   elseif roll <= 70 then
      local cursor = pick(user.cursors)
      path = "/v1/videos?limit=20" .. (cursor ~= "" and ("&cursor=" .. cursor) or "")
   elseif roll <= 90 then
      path = "/v1/videos/" .. pick(user.videos) .. "/status"
   else
      path = "/v1/quota"
   end
   return wrk.format("GET", path, headers)
end

-- Uniform in [0.5, 1.5) x DELAY_MS, so the connections do not fire in lockstep; rounded, as
-- wrk truncates the milliseconds.
function delay()
   return math.floor(delay_ms * (0.5 + math.random()) + 0.5)
end

function response(status)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end
