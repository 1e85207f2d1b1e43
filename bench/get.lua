-- wrk: GET /api/v1/timestamp/<id> for random ids read from the file named by
-- BENCH_IDS (one id a line), so every request finds an existing record.
dofile("bench/report.lua")

local ids = {}
init = function(args)
  for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
  math.randomseed(os.time() + tonumber(tostring(ids):match("0x(%x+)") or "0", 16))
end

request = function()
  return wrk.format("GET", "/api/v1/timestamp/" .. ids[math.random(#ids)])
end
