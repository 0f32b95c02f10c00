-- wrk script for sandbox.bench.prism: saveExamRpotImgIndx bodies, each with a msgid and indexes never sent before.
--
-- wrk -t1 -c16 -d10s -s hop2.lua URL -- TEMPLATE NONCE BASE_EPOCH CHECK
--   TEMPLATE   a JSON body in which "@MSGID@" stands for the msgid and each "@INST@" for the 12-character
--              institution segment of one record's hiImgIndx (nothing cross-checks that segment);
--   NONCE      3 characters [0-9A-Z] of this run, so no two runs send the same index;
--   BASE_EPOCH the seconds (UTC) the msgid's 14-digit time counts from in this run;
--   CHECK      "1": count an answer as bad unless it is code 0 with no record refused or partly saved
--              (the province); "0": only its HTTP status counts (a mock answers what its schema says).
-- Each thread numbers its requests from 0: request n of thread t has msgid
--   infCode(12) + time(BASE_EPOCH + t * 10^6 + n div 9999) + (n mod 9999 + 1) as 4 digits,
-- and record k (at most 100 records) the segment NONCE + t mod 10 (one character) + (n * 100 + k) as 8 digits.
-- done() prints one line `WRKJSON {...}` with the totals for the Python side.

local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter - 1)
  counter = counter + 1
  table.insert(threads, thread)
end

local parts, nonce, base, check, infcode
local n = 0
bad = 0

function init(args)
  local fh = assert(io.open(args[1], "rb"))
  local text = fh:read("*a")
  fh:close()
  nonce, base, check = args[2], tonumber(args[3]), args[4] == "1"
  infcode = text:match('"infCode":"([0-9A-Z]+)"')
  parts = {}
  local pos = 1
  while true do
    local a, b = text:find("@[A-Z]+@", pos)
    if not a then break end
    table.insert(parts, text:sub(pos, a - 1))
    table.insert(parts, text:sub(a, b))
    pos = b + 1
  end
  table.insert(parts, text:sub(pos))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local t = tonumber(tid)
  local out = {}
  local k = 0
  for i, piece in ipairs(parts) do
    if piece == "@MSGID@" then
      out[i] = infcode .. os.date("!%Y%m%d%H%M%S", base + t * 1000000 + math.floor(n / 9999))
        .. string.format("%04d", n % 9999 + 1)
    elseif piece == "@INST@" then
      out[i] = nonce .. string.format("%d%08d", t % 10, n * 100 + k)
      k = k + 1
    else
      out[i] = piece
    end
  end
  n = n + 1
  return wrk.format(nil, nil, nil, table.concat(out))
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  elseif check and (not body:find('"code":0,', 1, true) or body:find('"succFlag":"-1"', 1, true)
      or body:find('"succFlag":"0"', 1, true)) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, thread in ipairs(threads) do
    total_bad = total_bad + tonumber(thread:get("bad"))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bad":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, total_bad, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
