-- wrk: POST /api/v1/timestamp/<instant>, a different instant per request.
dofile("bench/report.lua")

local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", string.format("/api/v1/timestamp/2026-01-01T%02d:%02d:%02d.%06dZ",
    math.floor(n / 3600) % 24, math.floor(n / 60) % 60, n % 60, n % 1000000))
end
