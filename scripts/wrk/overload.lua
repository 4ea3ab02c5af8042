-- Overloads the payment gateway: full enrollments as in enrollment.lua, except that a
-- proposal answered 503 (payment busy or unavailable) is retried with
-- POST /enrollments/{id}/payment, again and again, OVERLOAD_DELAY_MS apart, until it goes
-- through. Run it against a server with a tiny --payment-queue / --payment-concurrency and
-- a slow --payment-latency, with -c equal to -t (one flow per thread), so that nearly every
-- payment request is refused at once while quotes and plans are measured next to it.

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local token = os.getenv("EZENROLL_TOKEN")
local pause = tonumber(os.getenv("OVERLOAD_DELAY_MS") or "5")
local step, customer, enrollment, plans = "customer", nil, nil, 0
local payments, busy, contracted = 0, 0, 0

local function json_request(method, path, body)
  local headers = { ["Content-Type"] = "application/json" }
  if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format(method, path, headers, body)
end

function delay()
  if step == "payment" then return pause end
  return 0
end

function request()
  if step == "customer" then
    return json_request("POST", "/customers",
      '{"name":"과부하' .. id .. '","birthDate":"1986-05-01","gender":"male","mobilePhone":"010-1234-5678"}')
  elseif step == "plan" then
    return json_request("POST", "/enrollments",
      '{"customerNo":"' .. customer .. '","productCode":"EZ-TERM","sumInsured":100000000,' ..
      '"coveragePeriod":20,"paymentPeriod":20,"paymentCycle":"monthly"}')
  elseif step == "document" then
    return json_request("POST", "/enrollments/" .. enrollment .. "/document", nil)
  elseif step == "poll" then
    return json_request("GET", "/enrollments/" .. enrollment, nil)
  elseif step == "proposal" then
    return json_request("POST", "/enrollments/" .. enrollment .. "/proposal", '{"paymentMethod":"card"}')
  else -- payment (retry)
    return json_request("POST", "/enrollments/" .. enrollment .. "/payment", nil)
  end
end

local function next_plan()
  plans = plans + 1
  if plans % 10 == 0 then step = "customer" else step = "plan" end
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
    if body:match('"status":"DocumentIssued"') then step = "proposal" end
  else -- proposal or payment
    payments = payments + 1
    if status == 503 then
      busy = busy + 1
      step = "payment"
    elseif body:match('"status":"Contracted"') then
      contracted = contracted + 1
      next_plan()
    else
      -- declined, refused, or already settled: move on
      next_plan()
    end
  end
  wrk.thread:set("payments", payments)
  wrk.thread:set("busy", busy)
  wrk.thread:set("contracted", contracted)
end

function done(summary, latency, requests)
  local paid, refused, settled = 0, 0, 0
  for _, t in ipairs(threads) do
    paid = paid + (t:get("payments") or 0)
    refused = refused + (t:get("busy") or 0)
    settled = settled + (t:get("contracted") or 0)
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT rps=%.0f p50_us=%d p99_us=%d payments_per_s=%.0f busy_share=%.4f contracted=%d\n",
    summary.requests / seconds, latency:percentile(50), latency:percentile(99),
    paid / seconds, paid > 0 and refused / paid or 0, settled))
end
