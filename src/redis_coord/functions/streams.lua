#!lua name=wss_streams
-- websocket-app streams: a channel's history or a user's inbox.
-- KEYS[1] meta hash {offset, epoch, replid}, KEYS[2] list of JSON entries,
-- KEYS[3] (append of a channel only) its pub/sub channel.

local function replid()
  local info = redis.call('INFO', 'replication')
  return string.match(info, 'master_replid:(%w+)') or '-'
end

-- The stream's offset and epoch; a new epoch (and an empty list) when the
-- meta is gone or was written by another server run (restart, failover).
local function position(keys, candidate, ttl)
  local id = replid()
  local meta = redis.call('HMGET', keys[1], 'offset', 'epoch', 'replid')
  local offset, epoch = tonumber(meta[1]) or 0, meta[2]
  if not epoch or meta[3] ~= id then
    epoch, offset = candidate, 0
    redis.call('DEL', keys[2])
    redis.call('HSET', keys[1], 'offset', 0, 'epoch', epoch, 'replid', id)
    redis.call('PEXPIRE', keys[1], ttl)
  end
  return offset, epoch, id
end

-- ARGV: json without its closing brace, size, ttl_ms, epoch candidate,
-- sent_at_us, publish command ('' for an inbox).
local function append(keys, args)
  local size, ttl = tonumber(args[2]), tonumber(args[3])
  local offset, epoch, id = position(keys, args[4], ttl)
  offset = offset + 1
  local json = args[1] .. ',"offset":' .. offset .. '}'
  redis.call('RPUSH', keys[2], json)
  redis.call('LTRIM', keys[2], -size, -1)
  redis.call('HSET', keys[1], 'offset', offset, 'epoch', epoch, 'replid', id)
  redis.call('PEXPIRE', keys[1], ttl)
  redis.call('PEXPIRE', keys[2], ttl)
  if args[6] ~= '' then
    local payload = 'P1 ' .. args[5] .. ' ' .. offset .. ' ' .. epoch .. '\n' .. json
    redis.call(args[6], keys[3], payload)
  end
  return {offset, epoch}
end

-- ARGV: since (-1: none), epoch, limit, epoch candidate, ttl_ms.
-- Returns {offset, epoch, complete (0/1), entries...}: with since, the
-- entries after it (at most limit) when since is in this epoch and still
-- kept, else none and complete 0; without, the last `limit` entries.
local function read(keys, args)
  local since, limit = tonumber(args[1]), tonumber(args[3])
  local top, epoch = position(keys, args[4], tonumber(args[5]))
  local out = {top, epoch, 1}
  local kept = redis.call('LLEN', keys[2])
  if since < 0 then
    if limit > 0 and kept > 0 then
      local first = math.max(kept - limit, 0)
      for _, e in ipairs(redis.call('LRANGE', keys[2], first, -1)) do table.insert(out, e) end
    end
    return out
  end
  local missed = top - since
  if args[2] ~= epoch or missed < 0 or missed > kept then
    out[3] = 0
    return out
  end
  if missed > 0 and limit > 0 then
    local first = kept - missed
    local last = math.min(first + limit, kept) - 1
    for _, e in ipairs(redis.call('LRANGE', keys[2], first, last)) do table.insert(out, e) end
  end
  return out
end

-- An idempotency key (KEYS[1]): claims it for ARGV[1] ms when new
-- (returns {1}), else returns {0, value} (the answer, or '' while the
-- first request is being carried out).
local function claim(keys, args)
  if redis.call('SET', keys[1], '', 'NX', 'PX', args[1]) then
    return {1}
  end
  return {0, redis.call('GET', keys[1]) or ''}
end

redis.register_function('wss_append', append)
redis.register_function('wss_idem_claim', claim)
redis.register_function('wss_read', read)
