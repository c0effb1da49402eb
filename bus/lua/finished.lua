-- A finished batch in one call (bus/jobstore.py): the mirrors of its jobs, then its throughput
-- counts (bus/throughput.py). One command instead of one per mirror, field and expiry: the worker
-- spends far less packing and parsing them.
--
-- KEYS: the m mirror keys, then the counted hashes
-- ARGV: m, the mirrors' expiry (s), the m mirrored jobs (JSON), then per counted hash: its number
--       of fields, field and increment for each, its expiry in seconds (0: it keeps its own)
local m = tonumber(ARGV[1])
local ttl = ARGV[2]
for i = 1, m do
  redis.call('SET', KEYS[i], ARGV[2 + i], 'EX', ttl)
end
local a = 3 + m
for k = m + 1, #KEYS do
  local fields = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, fields do
    redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  local expire = tonumber(ARGV[a])
  a = a + 1
  if expire > 0 then
    redis.call('EXPIRE', KEYS[k], expire)
  end
end
return m
