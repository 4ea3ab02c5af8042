-- POST /enrollments (plan saves, 가입설계 저장): a stateful write through an enrollment
-- actor and the store, with no payment in it. Each wrk thread registers one customer with
-- its first answer and saves plans for it from then on (plan saves reserve nothing of the
-- cumulative limit, so one customer can save any number).

local token = os.getenv("EZENROLL_TOKEN")
local customer = nil

local function json_request(method, path, body)
  local headers = { ["Content-Type"] = "application/json" }
  if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format(method, path, headers, body)
end

function request()
  if not customer then
    return json_request("POST", "/customers",
      '{"name":"설계부하","birthDate":"1986-05-01","gender":"male","mobilePhone":"010-1234-5678"}')
  end
  return json_request("POST", "/enrollments",
    '{"customerNo":"' .. customer .. '","productCode":"EZ-TERM","sumInsured":100000000,' ..
    '"coveragePeriod":20,"paymentPeriod":20,"paymentCycle":"monthly"}')
end

function response(status, headers, body)
  if not customer then
    customer = body:match('"customerNo":"(C%d+)"')
  end
end

-- Prints one machine-readable line after the run: requests/s and latency percentiles (µs).
function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), errors))
end
