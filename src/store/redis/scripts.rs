//! The Lua scripts of the Redis backend. Each touches the keys of one hash slot when it is
//! given the keys of one partition (or of the read model), so it runs unchanged on a Redis
//! Cluster; on a single server the multi-partition scripts take every partition's keys in
//! one call and save the round trips.
//!
//! Numbers cross as decimal strings. Lua numbers are doubles: versions, amounts in won and
//! microsecond timestamps stay below 2^53 and are exact.

use redis::Script;

/// Every script, hashed once, for EVALSHA.
pub(super) struct Scripts {
    pub(super) append: Script,
    pub(super) timer_ops: Script,
    pub(super) claim_timers: Script,
    pub(super) claim_stale: Script,
    pub(super) reserve: Script,
    pub(super) upsert_views: Script,
    pub(super) record_alarms: Script,
    pub(super) views: Script,
    pub(super) view_page: Script,
    pub(super) alarms: Script,
    pub(super) compact: Script,
    pub(super) ledger_approve: Script,
    pub(super) ledger_refund: Script,
    pub(super) idem_claim: Script,
    pub(super) idem_put: Script,
    pub(super) idem_take_over: Script,
    pub(super) idem_release: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            append: Script::new(&append()),
            timer_ops: Script::new(&timer_ops()),
            claim_timers: Script::new(CLAIM_TIMERS),
            claim_stale: Script::new(CLAIM_STALE),
            reserve: Script::new(RESERVE),
            upsert_views: Script::new(UPSERT_VIEWS),
            record_alarms: Script::new(RECORD_ALARMS),
            views: Script::new(VIEWS),
            view_page: Script::new(VIEW_PAGE),
            alarms: Script::new(ALARMS),
            compact: Script::new(COMPACT),
            ledger_approve: Script::new(LEDGER_APPROVE),
            ledger_refund: Script::new(LEDGER_REFUND),
            idem_claim: Script::new(IDEM_CLAIM),
            idem_put: Script::new(IDEM_PUT),
            idem_take_over: Script::new(IDEM_TAKE_OVER),
            idem_release: Script::new(IDEM_RELEASE),
        }
    }
}

/// Timer operations, shared by [`APPEND`] and [`TIMER_OPS`]: from ARGV position `i`, each
/// op is `S member score attempt` (set or move) or `C member` (cancel). KEYS[t] is the
/// partition's timer zset (member → due, µs) and KEYS[t+1] its hash member → attempt,
/// which holds only attempts other than 0 (most timers never get one: an HDEL of a field
/// that is not there writes nothing, not even to the AOF).
const TIMER_OPS_FN: &str = r#"
local function timer_ops(t, i)
  while i <= #ARGV do
    if ARGV[i] == 'S' then
      redis.call('ZADD', KEYS[t], ARGV[i + 2], ARGV[i + 1])
      if ARGV[i + 3] == '0' then
        redis.call('HDEL', KEYS[t + 1], ARGV[i + 1])
      else
        redis.call('HSET', KEYS[t + 1], ARGV[i + 1], ARGV[i + 3])
      end
      i = i + 4
    else
      redis.call('ZREM', KEYS[t], ARGV[i + 1])
      redis.call('HDEL', KEYS[t + 1], ARGV[i + 1])
      i = i + 2
    end
  end
end
"#;

/// The transactional outbox: one call per state transition.
///
/// KEYS: 1 enrollment hash (v = version, s = snapshot, `doc:<number>` = the text of each
/// document issued), 2 its history list, 3 its partition's stream, 4 timer zset, 5 timer
/// attempts, 6 the partition's lease (hash: o = owner, f = fencing number).
/// ARGV: 1 expected version, 2 new version, 3 snapshot, 4 stream cap (MAXLEN ~),
/// 5 the field of a document issued by this append, or '', 6 its text or '', 7 event
/// count n, 8 the writer's fencing number or '' (none: not checked), 9..8+n event JSON,
/// then timer ops.
/// Stream entries hold the event as field `e`, nothing else: the MyPage projector reads
/// the states it needs back, since it lingers and writes far fewer views than there are
/// appends, and a snapshot in every entry would grow the AOF and every group's reads.
/// (Entries of the older layout also carry the snapshot as `s` in an append's last entry;
/// they are still used.)
/// Returns `{1, new version}`, `{0, actual version}` (a conflict: nothing written) or
/// `{2, 0}` (fenced: the lease is not held with that number; nothing written).
pub fn append() -> String {
    format!(
        "{TIMER_OPS_FN}{}",
        r#"
if ARGV[8] ~= '' and redis.call('HGET', KEYS[6], 'f') ~= ARGV[8] then
  return {2, 0}
end
local actual = redis.call('HGET', KEYS[1], 'v') or '0'
if actual ~= ARGV[1] then
  return {0, actual}
end
if ARGV[5] == '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3], ARGV[5], ARGV[6])
end
local n = tonumber(ARGV[7])
for k = 1, n do
  local event = ARGV[8 + k]
  redis.call('RPUSH', KEYS[2], event)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'e', event)
end
timer_ops(4, 9 + n)
return {1, ARGV[2]}
"#
    )
}

/// Timer operations outside an append. KEYS: timer zset, timer attempts; ARGV: ops.
pub fn timer_ops() -> String {
    format!("{TIMER_OPS_FN}timer_ops(1, 1)\nreturn 1\n")
}

/// Claims due timers. KEYS: pairs (timer zset, attempts) of one or more partitions, taken
/// in order; ARGV: 1 now (µs), 2 lease end (µs), 3 max. A claimed timer moves to the lease
/// end, so one that is neither cancelled nor set again comes due again.
/// Returns a flat list `member, due (µs), attempt` per timer.
pub const CLAIM_TIMERS: &str = r#"
local budget = tonumber(ARGV[3])
local out = {}
local t = 1
while t < #KEYS and budget > 0 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[t], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, budget)
  for k = 1, #due, 2 do
    local member = due[k]
    out[#out + 1] = member
    out[#out + 1] = due[k + 1]
    out[#out + 1] = redis.call('HGET', KEYS[t + 1], member) or '0'
    redis.call('ZADD', KEYS[t], ARGV[2], member)
    budget = budget - 1
  end
  t = t + 2
end
return out
"#;

/// Takes over entries pending longer than min-idle. KEYS: one or more partition streams,
/// in order; ARGV: 1 group, 2 consumer, 3 min idle (ms), 4 max. Returns a flat list
/// `stream index (1-based), entry id, event JSON, deliveries` per entry. Entries trimmed
/// away are dropped from the pending list by XAUTOCLAIM itself.
pub const CLAIM_STALE: &str = r#"
local budget = tonumber(ARGV[4])
local out = {}
for s = 1, #KEYS do
  if budget <= 0 then break end
  local cursor = '0-0'
  repeat
    local r = redis.call('XAUTOCLAIM', KEYS[s], ARGV[1], ARGV[2], ARGV[3], cursor, 'COUNT', budget)
    cursor = r[1]
    for _, entry in ipairs(r[2]) do
      local id = entry[1]
      local fields = entry[2]
      local event = false
      if fields then
        for f = 1, #fields, 2 do
          if fields[f] == 'e' then event = fields[f + 1] end
        end
      end
      local p = redis.call('XPENDING', KEYS[s], ARGV[1], id, id, 1)
      local deliveries = 1
      if p[1] then deliveries = p[1][4] end
      out[#out + 1] = s
      out[#out + 1] = id
      out[#out + 1] = event or ''
      out[#out + 1] = deliveries
      budget = budget - 1
    end
  until cursor == '0-0' or budget <= 0
end
return out
"#;

/// Reserves part of a customer's cumulative limit for one enrollment.
/// KEYS: 1 the customer's holdings of one product (hash enrollment → amount).
/// ARGV: 1 enrollment, 2 amount, 3 limit. Returns `{1, total}` or `{0, held by others}`.
pub const RESERVE: &str = r#"
local previous = redis.call('HGET', KEYS[1], ARGV[1])
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
local others = total - (tonumber(previous) or 0)
if previous == ARGV[2] then
  return {1, tostring(total)}
end
if others + tonumber(ARGV[2]) <= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return {1, tostring(others + tonumber(ARGV[2]))}
end
return {0, tostring(others)}
"#;

/// Writes MyPage views, each unless the stored one is at the same or a later version,
/// keeping the indexes. KEYS: 1 unused (repeats KEYS[4], so the call names a view's slot
/// first), 2 zset of all views (the global index), 3 status counts, then one view hash
/// (v, s, c, j) per view. ARGV: 1 the per-customer zset key prefix (same slot), 2 how many
/// views the global index keeps (the least recently changed go first beyond it), then six
/// values per view (version, status, customer no, JSON, score = updated at in µs,
/// enrollment id). Returns a list of 1 (written) / 0.
///
/// The status counts move once per status and call (HINCRBY by the sum), not twice per
/// view; the global index is trimmed once per call.
pub const UPSERT_VIEWS: &str = r#"
local deltas = {}
local out = {}
for k = 4, #KEYS do
  local a = 3 + (k - 4) * 6
  local view, version, status, customer = KEYS[k], ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local id = ARGV[a + 5]
  local old = redis.call('HMGET', view, 'v', 's', 'c')
  if old[1] and tonumber(old[1]) >= tonumber(version) then
    out[#out + 1] = 0
  else
    if old[2] then deltas[old[2]] = (deltas[old[2]] or 0) - 1 end
    deltas[status] = (deltas[status] or 0) + 1
    if old[3] and old[3] ~= customer then
      redis.call('ZREM', ARGV[1] .. old[3], id)
    end
    redis.call('ZADD', ARGV[1] .. customer, ARGV[a + 4], id)
    redis.call('ZADD', KEYS[2], ARGV[a + 4], id)
    redis.call('HSET', view, 'v', version, 's', status, 'c', customer, 'j', ARGV[a + 3])
    out[#out + 1] = 1
  end
end
for status, d in pairs(deltas) do
  if d ~= 0 then redis.call('HINCRBY', KEYS[3], status, d) end
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[2]) + 1))
return out
"#;

/// Views, most recently changed first. KEYS: 1 the index zset (all, or one customer's).
/// ARGV: 1 limit, 2 status or '', 3 view key prefix (same slot). Returns the JSON of each.
pub const VIEWS: &str = r#"
local limit = tonumber(ARGV[1])
local out = {}
local start = 0
local page = math.max(limit, 64)
while #out < limit do
  local ids = redis.call('ZREVRANGE', KEYS[1], start, start + page - 1)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local v = redis.call('HMGET', ARGV[3] .. id, 's', 'j')
    if v[2] and (ARGV[2] == '' or v[1] == ARGV[2]) then
      out[#out + 1] = v[2]
      if #out >= limit then break end
    end
  end
  start = start + page
end
return out
"#;

/// One page of views, in the index's order (score = last change in µs, then member, both
/// descending), after a cursor. KEYS: 1 the index zset (all, or one customer's).
/// ARGV: 1 limit, 2 status or '', 3 product code or '', 4 view key prefix (same slot),
/// 5 the cursor's score or '' (from the start), 6 the cursor's id, 7 how many index
/// entries to look at at most, so a filter that few views pass cannot hold Redis for long.
/// Returns `{next score, next id, json...}`; the next place is '' when the index ends
/// here, else the last entry looked at.
pub const VIEW_PAGE: &str = r#"
local limit, budget = tonumber(ARGV[1]), tonumber(ARGV[7])
local max, at = '+inf', nil
if ARGV[5] ~= '' then max, at = ARGV[5], tonumber(ARGV[5]) end
local out = {'', ''}
local found, seen, offset = 0, 0, 0
while found < limit and seen < budget do
  local batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'WITHSCORES', 'LIMIT', offset, 64)
  if #batch == 0 then
    out[1], out[2] = '', ''
    return out
  end
  for i = 1, #batch, 2 do
    local id, score = batch[i], batch[i + 1]
    offset = offset + 1
    if at == nil or tonumber(score) ~= at or id < ARGV[6] then
      seen = seen + 1
      out[1], out[2] = score, id
      local v = redis.call('HMGET', ARGV[4] .. id, 's', 'j')
      if v[2] and (ARGV[2] == '' or v[1] == ARGV[2])
        and (ARGV[3] == '' or cjson.decode(v[2])['productCode'] == ARGV[3]) then
        out[#out + 1] = v[2]
        found = found + 1
      end
      if found >= limit or seen >= budget then break end
    end
  end
end
return out
"#;

/// Records alarms, each once per event. An alarm lives in its customer's hash (event id →
/// `<sent at, µs> <rest>`, as the caller encoded it), which is also what makes it once
/// per event (HSETNX), and in
/// the global index (zset, member `<customer no>:<event id>`, score = sent at).
/// KEYS: 1 the global index, then the customer hash of each alarm. ARGV: 1 how many
/// entries the global index keeps, 2 how many alarms a customer keeps, then four values
/// per alarm (event id, the stored value `<score> <rest>`, score, the index member
/// `<customer no>:<event id>`), made by the caller: a string built in Lua is one more
/// Lua string, which Redis hashes byte by byte. Returns a list of 1 (new) / 0.
///
/// Retention, once per call: a customer hash that grew beyond its cap loses its oldest
/// alarms, and the global index keeps its newest entries (an entry whose alarm its
/// customer no longer keeps is skipped when listing).
pub const RECORD_ALARMS: &str = r#"
local out = {}
local touched = {}
for k = 2, #KEYS do
  local a = (k - 2) * 4 + 3
  local id, score = ARGV[a], ARGV[a + 2]
  if redis.call('HSETNX', KEYS[k], id, ARGV[a + 1]) == 0 then
    out[#out + 1] = 0
  else
    redis.call('ZADD', KEYS[1], score, ARGV[a + 3])
    touched[KEYS[k]] = true
    out[#out + 1] = 1
  end
end
local keep = tonumber(ARGV[2])
for key in pairs(touched) do
  local n = redis.call('HLEN', key)
  if n > keep then
    local all = redis.call('HGETALL', key)
    local entries = {}
    for f = 1, #all, 2 do
      local at = tonumber(string.match(all[f + 1], '^(%-?%d+) ')) or 0
      entries[#entries + 1] = {at, all[f]}
    end
    table.sort(entries, function(x, y)
      if x[1] ~= y[1] then return x[1] < y[1] end
      return x[2] < y[2]
    end)
    local drop = {}
    for i = 1, n - keep do
      drop[#drop + 1] = entries[i][2]
      if #drop == 1000 then
        redis.call('HDEL', key, unpack(drop))
        drop = {}
      end
    end
    if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[1]) + 1))
return out
"#;

/// Alarms of every customer, newest first. KEYS: 1 the global index. ARGV: 1 limit, 2 the
/// customer hash key prefix (same slot). Returns, per alarm, its index member
/// (`<customer no>:<event id>`) and its stored value.
pub const ALARMS: &str = r#"
local limit = tonumber(ARGV[1])
local out = {}
local start = 0
local page = math.max(limit, 64)
while #out < 2 * limit do
  local members = redis.call('ZREVRANGE', KEYS[1], start, start + page - 1)
  if #members == 0 then break end
  for _, m in ipairs(members) do
    local customer, id = string.match(m, '^([^:]+):(.+)$')
    if customer then
      local v = redis.call('HGET', ARGV[2] .. customer, id)
      if v then
        out[#out + 1] = m
        out[#out + 1] = v
        if #out >= 2 * limit then break end
      end
    end
  end
  start = start + page
end
return out
"#;

/// Trims a partition stream to what its slowest consumer group still needs: entries
/// before every group's oldest pending entry (or, with none pending, its last delivered
/// one) are gone. KEYS: 1 the stream. Returns how many entries were removed; a stream
/// without groups is left alone.
pub const COMPACT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local ams, aseq = parse(a)
  local bms, bseq = parse(b)
  return ams < bms or (ams == bms and aseq < bseq)
end
local keep = nil
for _, g in ipairs(groups) do
  local name, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  local needed = last
  local pending = redis.call('XPENDING', KEYS[1], name)
  if pending[1] > 0 then needed = pending[2] end
  if keep == nil or less(needed, keep) then keep = needed end
end
if keep == '0-0' then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', keep)
"#;

/// Records a payment id as the approval of a reference unless one is recorded; only a
/// first recording counts as money taken. KEYS: 1 the reference's hash (p = payment id,
/// n = times money was taken); ARGV: 1 the payment id. Returns `{1, payment id}` when
/// recorded now, else `{0, the payment id recorded before}`.
pub const LEDGER_APPROVE: &str = r#"
if redis.call('HSETNX', KEYS[1], 'p', ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'n', 1)
  return {1, ARGV[1]}
end
return {0, redis.call('HGET', KEYS[1], 'p')}
"#;

/// Records a refund id for a payment unless one is recorded (`SET NX GET` would need
/// Redis 7). KEYS: 1 the payment's refund record; ARGV: 1 the refund id. Returns
/// `{1, refund id}` when recorded now, else `{0, the refund id recorded before}`.
pub const LEDGER_REFUND: &str = r#"
local kept = redis.call('GET', KEYS[1])
if kept then return {0, kept} end
redis.call('SET', KEYS[1], ARGV[1])
return {1, ARGV[1]}
"#;

/// Idempotency records are `D<answer>` or `P<holder>` (claimed by that copy, no answer
/// yet; records of older builds are a bare `P`).
/// KEYS: 1 the record; ARGV: 1 the lease (ms), 2 the holder. Returns `{1}` claimed,
/// `{2, holder}` in progress, `{3, answer}` done.
pub const IDEM_CLAIM: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'P' .. ARGV[2], 'PX', ARGV[1])
  return {1}
end
if string.sub(v, 1, 1) == 'P' then return {2, string.sub(v, 2)} end
return {3, string.sub(v, 2)}
"#;

/// Moves a claim from a holder that died to another. KEYS: 1 the record; ARGV: 1 the
/// lease (ms), 2 the dead holder, 3 the new one. Returns 1 if moved.
pub const IDEM_TAKE_OVER: &str = r#"
if redis.call('GET', KEYS[1]) ~= 'P' .. ARGV[2] then return 0 end
redis.call('SET', KEYS[1], 'P' .. ARGV[3], 'PX', ARGV[1])
return 1
"#;

/// KEYS: 1 the record; ARGV: 1 the answer, 2 TTL (ms). Returns 1 if kept, 0 if an answer
/// was kept already.
pub const IDEM_PUT: &str = r#"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) ~= 'P' then return 0 end
redis.call('SET', KEYS[1], 'D' .. ARGV[1], 'PX', ARGV[2])
return 1
"#;

/// KEYS: 1 the record. Drops it if it is only a claim.
pub const IDEM_RELEASE: &str = r#"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'P' then redis.call('DEL', KEYS[1]) end
return 1
"#;
