#!lua name=wss_presence
-- websocket-app presence of one channel. Keys (hash tag = the channel):
-- KEYS[1] this server's part: user -> connections on it
-- KEYS[2] the channel's users: user -> connections on every server
-- KEYS[3] meta: connections (total), jl_tokens, jl_ms, jl_dropped
-- KEYS[4] the channel's pub/sub channel (join/leave events)

-- Takes a join/leave token (rate per second, burst = rate); false when none.
local function take_token(meta, rate)
  if rate <= 0 then return true end
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local state = redis.call('HMGET', meta, 'jl_tokens', 'jl_ms')
  local tokens = tonumber(state[1]) or rate
  local last = tonumber(state[2]) or ms
  tokens = math.min(rate, tokens + (ms - last) * rate / 1000)
  if tokens < 1 then
    redis.call('HSET', meta, 'jl_tokens', tostring(tokens), 'jl_ms', ms)
    redis.call('HINCRBY', meta, 'jl_dropped', 1)
    return false
  end
  redis.call('HSET', meta, 'jl_tokens', tostring(tokens - 1), 'jl_ms', ms)
  return true
end

-- Applies `delta` connections of `user`; returns 'join', 'leave' or nil
-- when the user's count on every server crossed zero.
local function apply(keys, user, delta)
  local mine = redis.call('HINCRBY', keys[1], user, delta)
  if mine <= 0 then redis.call('HDEL', keys[1], user) end
  local total = redis.call('HINCRBY', keys[2], user, delta)
  if total <= 0 then redis.call('HDEL', keys[2], user) end
  local conns = redis.call('HINCRBY', keys[3], 'connections', delta)
  if conns < 0 then redis.call('HSET', keys[3], 'connections', 0) end
  if delta > 0 and total == delta then return 'join' end
  if delta < 0 and total <= 0 and total - delta > 0 then return 'leave' end
  return nil
end

-- Publishes a join or leave (rate-limited) like a publication without offset.
local function announce(keys, opts, kind, user)
  if opts.events and take_token(keys[3], opts.rate) then
    local json = '{"type":"' .. kind .. '","channel":"' .. opts.channel .. '","userId":"' .. user .. '"}'
    redis.call(opts.publish, keys[4], 'P1 ' .. opts.sent_at .. ' 0 -\n' .. json)
  end
end

-- ARGV: join_leave (0/1), rate, publish command, sent_at_us, channel,
-- then user, delta pairs.
local function changes(keys, args)
  local opts = {events = args[1] == '1', rate = tonumber(args[2]), publish = args[3],
                sent_at = args[4], channel = args[5]}
  for i = 6, #args, 2 do
    local user, delta = args[i], tonumber(args[i + 1])
    local event = apply(keys, user, delta)
    if event then announce(keys, opts, event, user) end
  end
  return redis.call('HLEN', keys[2])
end

-- A dead server's part leaves (with leave events). ARGV as `changes`,
-- without pairs.
local function drop(keys, args)
  local opts = {events = args[1] == '1', rate = tonumber(args[2]), publish = args[3],
                sent_at = args[4], channel = args[5]}
  local part = redis.call('HGETALL', keys[1])
  for i = 1, #part, 2 do
    local event = apply(keys, part[i], -tonumber(part[i + 1]))
    if event then announce(keys, opts, event, part[i]) end
  end
  redis.call('DEL', keys[1])
  return #part / 2
end

-- Sets this server's part to exactly the given pairs (after the link came
-- back, or Redis lost it), adjusting the totals. A user whose total crossed
-- zero meanwhile is announced like a change, so subscribers elsewhere learn
-- of the joins and leaves the outage hid. ARGV as `changes`.
local function reset(keys, args)
  local opts = {events = args[1] == '1', rate = tonumber(args[2]), publish = args[3],
                sent_at = args[4], channel = args[5]}
  local now = {}
  for i = 6, #args, 2 do now[args[i]] = tonumber(args[i + 1]) end
  local part = redis.call('HGETALL', keys[1])
  for i = 1, #part, 2 do
    local user, had = part[i], tonumber(part[i + 1])
    local event = apply(keys, user, (now[user] or 0) - had)
    if event then announce(keys, opts, event, user) end
    now[user] = nil
  end
  for user, count in pairs(now) do
    local event = apply(keys, user, count)
    if event then announce(keys, opts, event, user) end
  end
  return 1
end

-- The channel's users with their connections, at most ARGV[1] of them
-- (0: only the counts). KEYS[1] the users hash, KEYS[2] the meta.
-- Returns {truncated (0/1), users, connections, user, count, ...}.
local function list(keys, args)
  local cap = tonumber(args[1])
  local users = redis.call('HLEN', keys[1])
  local out = {0, users, tonumber(redis.call('HGET', keys[2], 'connections')) or 0}
  if cap == 0 then
    out[1] = users > 0 and 1 or 0
    return out
  end
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', keys[1], cursor, 'COUNT', 200)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      if (#out - 3) / 2 >= cap then
        out[1] = 1
        return out
      end
      table.insert(out, page[2][i])
      table.insert(out, tonumber(page[2][i + 1]))
    end
  until cursor == '0'
  return out
end

redis.register_function('wss_presence_changes', changes)
redis.register_function('wss_presence_drop', drop)
redis.register_function('wss_presence_reset', reset)
redis.register_function('wss_presence_list', list)
