-- wrk script: GET random ranges of RANGE_SIZE bytes (aligned to the range size) of a FILE_SIZE
-- file at PATH, from a fixed seed per thread so that keel and nginx get the same ranges.
-- Prints one JSON line with bytes, requests, errors and duration.
local path, file_size, range_size = os.getenv("BENCH_PATH"), tonumber(os.getenv("BENCH_FILE_SIZE")), tonumber(os.getenv("BENCH_RANGE_SIZE"))
local slots = math.floor(file_size / range_size)
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
function init(args)
  math.randomseed(seed)
end
function request()
  local first = math.random(0, slots - 1) * range_size
  return wrk.format("GET", path, { ["Range"] = "bytes=" .. first .. "-" .. (first + range_size - 1) })
end
function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format('{"bytes":%d,"requests":%d,"errors":%d,"duration_us":%d,"p99_us":%d}\n',
    summary.bytes, summary.requests, errors, summary.duration, latency:percentile(99)))
end
