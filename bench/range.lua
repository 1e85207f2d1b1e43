-- wrk: walks GET /api/v1/timestamps in pages of 100 over [BENCH_RANGE_FROM,
-- BENCH_RANGE_TO), each request the page the previous answer's Link named
-- (keyset pages, a cursor each), the first page again after the last. The
-- connections of a thread share the walk, so a page may be read twice: every
-- request is still a page of 100 that the service finds by its cursor.
dofile("bench/report.lua")

local first, next_path
init = function(args)
  first = "/api/v1/timestamps?from=" .. os.getenv("BENCH_RANGE_FROM") ..
          "&to=" .. os.getenv("BENCH_RANGE_TO") .. "&limit=100"
  next_path = first
end

request = function()
  return wrk.format("GET", next_path)
end

response = function(status, headers, body)
  local link = headers["Link"]
  next_path = (status == 200 and link and link:match("^<([^>]*)>")) or first
end
