-- Full enrollments over HTTP, one state machine per wrk thread (run with -c equal to -t,
-- so each thread's requests and responses alternate on its one connection):
--   customer → plan → document → (long poll until issued) → proposal (paid) → next plan.
-- A customer is reused for 10 plans (the EZ-TERM cumulative limit allows 20 of 1억).

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local token = os.getenv("EZENROLL_TOKEN")
local step, customer, enrollment, plans, contracted, polls = "customer", nil, nil, 0, 0, 0

local function json_request(method, path, body)
  local headers = { ["Content-Type"] = "application/json" }
  if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format(method, path, headers, body)
end

function request()
  if step == "customer" then
    return json_request("POST", "/customers",
      '{"name":"부하' .. id .. '","birthDate":"1986-05-01","gender":"male","mobilePhone":"010-1234-5678"}')
  elseif step == "plan" then
    return json_request("POST", "/enrollments",
      '{"customerNo":"' .. customer .. '","productCode":"EZ-TERM","sumInsured":100000000,' ..
      '"coveragePeriod":20,"paymentPeriod":20,"paymentCycle":"monthly"}')
  elseif step == "document" then
    return json_request("POST", "/enrollments/" .. enrollment .. "/document", nil)
  elseif step == "poll" then
    -- A long poll: answered when the document is issued (or after 10 s), not at once.
    return json_request("GET", "/enrollments/" .. enrollment ..
      "?waitWhileStatus=DocumentRequested&waitSeconds=10", nil)
  else -- proposal
    return json_request("POST", "/enrollments/" .. enrollment .. "/proposal", '{"paymentMethod":"card"}')
  end
end

function response(status, headers, body)
  if step == "customer" then
    customer = body:match('"customerNo":"(C%d+)"')
    if customer then step = "plan" end
  elseif step == "plan" then
    enrollment = body:match('"id":"([%x%-]+)"')
    if enrollment then step = "document" end
  elseif step == "document" then
    if status == 202 then step = "poll" else step = "plan" end
  elseif step == "poll" then
    polls = polls + 1
    if body:match('"status":"DocumentIssued"') then step = "proposal" end
  else
    if body:match('"status":"Contracted"') then
      contracted = contracted + 1
      wrk.thread:set("contracted", contracted)
    end
    plans = plans + 1
    if plans % 10 == 0 then step = "customer" else step = "plan" end
  end
  wrk.thread:set("polls", polls)
end

function done(summary, latency, requests)
  local total, polled = 0, 0
  for _, t in ipairs(threads) do
    total = total + (t:get("contracted") or 0)
    polled = polled + (t:get("polls") or 0)
  end
  io.write(string.format("RESULT rps=%.0f p50_us=%d p99_us=%d errors=%d enrollments_per_s=%.0f polls=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    total / (summary.duration / 1e6), polled))
end
