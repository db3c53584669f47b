-- wrk script: each thread stops after N responses (N = first script
-- argument, default 10000), so `wrk -t2 ... -- 10000` makes 20,000
-- requests and then exits, well before its -d limit.
local limit, count = 10000, 0

function init(args)
  limit = tonumber(args[1]) or limit
end

function response(status, headers, body)
  count = count + 1
  if count >= limit then
    wrk.thread:stop()
  end
end
