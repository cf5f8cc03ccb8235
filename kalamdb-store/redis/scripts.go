package redis

import goredis "github.com/redis/go-redis/v9"

// Every change that touches more than one Redis key runs as one Lua script,
// which Redis executes atomically: no other command runs between its first
// and last line. Each script checks what it needs (the partition exists, the
// Redis keys have the expected types) before its first write, or orders its
// writes so that only the first one can fail, so a script that fails writes
// nothing. (Redis does not roll back a script's earlier writes when a later
// command fails; it refuses a script's first write when it is out of memory,
// and then lets the script finish.)
//
// Layout, for key prefix P and partition N (see the package documentation):
//
//	P/partitions   hash: partition name -> generation (decimal)
//	P/generation   string: the last generation handed out (INCR)
//	{P/N}/keys     sorted set: every key of N, score 0, ordered bytewise
//	{P/N}/values   hash: key -> value
//
// Return conventions: 1 (or 0 for batchScript) on success, 0 (or the
// 1-based index of the missing partition for batchScript) when a partition
// does not exist; a WRONGTYPE error when a Redis key under the prefix holds
// something this package did not write.

// checkTypes is inlined into batchScript. It returns an error reply naming
// the first of z (sorted set) and h (hash) that holds another type.
const checkTypes = `
local function checkTypes(z, h)
  local tz = redis.call('TYPE', z)['ok']
  if tz ~= 'none' and tz ~= 'zset' then
    return redis.error_reply('WRONGTYPE redis key ' .. z .. ' holds a ' .. tz .. ', not the sorted set of a partition')
  end
  local th = redis.call('TYPE', h)['ok']
  if th ~= 'none' and th ~= 'hash' then
    return redis.error_reply('WRONGTYPE redis key ' .. h .. ' holds a ' .. th .. ', not the hash of a partition')
  end
  return nil
end
`

// checkZset is inlined into putScript and deleteScript: they check only the
// sorted set, and write the hash first, so that a hash of another type fails
// their first write and nothing is written.
const checkZset = `
local function checkZset(z)
  local tz = redis.call('TYPE', z)['ok']
  if tz ~= 'none' and tz ~= 'zset' then
    return redis.error_reply('WRONGTYPE redis key ' .. z .. ' holds a ' .. tz .. ', not the sorted set of a partition')
  end
  return nil
end
`

// putScript: KEYS = registry, keys zset, values hash; ARGV = partition, key, value.
var putScript = goredis.NewScript(checkZset + `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local bad = checkZset(KEYS[2])
if bad then return bad end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
return 1
`)

// deleteScript: KEYS = registry, keys zset, values hash; ARGV = partition, key.
var deleteScript = goredis.NewScript(checkZset + `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local bad = checkZset(KEYS[2])
if bad then return bad end
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`)

// batchScript: KEYS = registry, then the keys zset and values hash of each
// partition the batch names (partition i at KEYS[2i], KEYS[2i+1]).
// ARGV = the partition names (ARGV[i] for partition i), then the operations
// in order: "p<i>", key, value for a put, "d<i>", key for a delete,
// "r<i>", start, end for a range delete, "a<i>", key for a check that key
// is absent and "v<i>", key, value for a check that key holds value.
// It returns 0; or the index i of a partition that does not exist; or, for
// the first check that does not hold, -(2*j + 1) when its key is missing
// and -(2*j + 2) when it exists, j being the check's 0-based position in
// the batch. In the last two cases it writes nothing: every check is
// evaluated before the first write.
var batchScript = goredis.NewScript(checkTypes + `
local np = (#KEYS - 1) / 2
for i = 1, np do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then return i end
  local bad = checkTypes(KEYS[2*i], KEYS[2*i+1])
  if bad then return bad end
end
local a, n, j = np + 1, #ARGV, 0
while a <= n do
  local op = ARGV[a]
  local kind = string.byte(op, 1)
  if kind == 97 or kind == 118 then
    local h = KEYS[2*tonumber(string.sub(op, 2))+1]
    local v = redis.call('HGET', h, ARGV[a+1])
    if kind == 97 then
      if v then return -(2*j + 2) end
      a = a + 2
    else
      if not v then return -(2*j + 1) end
      if v ~= ARGV[a+2] then return -(2*j + 2) end
      a = a + 3
    end
  elseif kind == 100 then
    a = a + 2
  else
    a = a + 3
  end
  j = j + 1
end
a = np + 1
while a <= n do
  local op = ARGV[a]
  local i = tonumber(string.sub(op, 2))
  local z, h, key = KEYS[2*i], KEYS[2*i+1], ARGV[a+1]
  local kind = string.byte(op, 1)
  if kind == 112 then
    redis.call('ZADD', z, 0, key)
    redis.call('HSET', h, key, ARGV[a+2])
    a = a + 3
  elseif kind == 97 then
    a = a + 2
  elseif kind == 118 then
    a = a + 3
  elseif kind == 114 then
    local lo, hi = '[' .. key, '(' .. ARGV[a+2]
    local doomed = redis.call('ZRANGEBYLEX', z, lo, hi)
    for j = 1, #doomed do
      redis.call('HDEL', h, doomed[j])
    end
    redis.call('ZREMRANGEBYLEX', z, lo, hi)
    a = a + 3
  else
    redis.call('ZREM', z, key)
    redis.call('HDEL', h, key)
    a = a + 2
  end
end
return 0
`)

// createScript: KEYS = registry, generation counter, keys zset, values hash;
// ARGV = partition. It returns 1 when it created the partition, 0 when it
// existed. A new partition starts empty whatever was left under its keys.
var createScript = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local g = redis.call('INCR', KEYS[2])
redis.call('UNLINK', KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], ARGV[1], g)
return 1
`)

// dropScript: KEYS = registry, keys zset, values hash; ARGV = partition.
// UNLINK frees the data in the background, so dropping a large partition
// does not block the server.
var dropScript = goredis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('UNLINK', KEYS[2], KEYS[3])
return 1
`)
