-- Puts the messages of dead Redis workers back at the HEAD of their queues.
--
-- keys=[namespace]; args=[timestamp, heartbeat_timeout, dead_message_ttl, queue_name...]
-- Returns how many messages went back.
--
-- A mirror of the maintenance pass of Dramatiq 2.2.1's brokers/redis/dispatch.lua (the block
-- `if do_maintenance == "1" then ... end`): the same keys, the same test of a dead worker (its
-- `__heartbeats__` score older than the heartbeat timeout), the same check that a message still has
-- its body, the same expiry of old dead letters. It differs in three ways:
--   * LPUSH, oldest message first (by message_timestamp), instead of RPUSH: a killed worker's jobs
--     run again before the backlog, not after it;
--   * every queue named in args in one call, not only the queue of one random broker call;
--   * a dead worker is dropped from `__heartbeats__` once its messages on these queues are back,
--     without Dramatiq's KEYS scan of the whole keyspace (so args must name every queue).

local namespace = KEYS[1]
local timestamp = tonumber(ARGV[1])
local heartbeat_timeout = tonumber(ARGV[2])
local dead_message_ttl = tonumber(ARGV[3])
local heartbeats = namespace .. ":__heartbeats__"
-- well below Lua's stack limit for unpack()
local CHUNK = 1000

local function enqueued_at(body)
    local ok, fields = pcall(cjson.decode, body)
    if ok and type(fields) == "table" and type(fields["message_timestamp"]) == "number" then
        return fields["message_timestamp"]
    end
    -- undecodable: at the very head, so a consumer quarantines it at once
    return 0
end

local requeued = 0
local dead_workers = redis.call("zrangebyscore", heartbeats, 0, timestamp - heartbeat_timeout)
for _, dead_worker in ipairs(dead_workers) do
    for i = 4, #ARGV do
        local queue_full_name = namespace .. ":" .. ARGV[i]
        local queue_messages = queue_full_name .. ".msgs"
        local dead_worker_queue_acks = namespace .. ":__acks__." .. dead_worker .. "." .. ARGV[i]
        local message_ids = redis.call("smembers", dead_worker_queue_acks)
        if next(message_ids) then
            local held = {}
            for _, message_id in ipairs(message_ids) do
                local body = redis.call("hget", queue_messages, message_id)
                if body then
                    table.insert(held, {enqueued_at(body), message_id})
                end
            end
            -- newest first: each id LPUSHed goes before the one pushed before it, so the oldest ends at the head
            table.sort(held, function(a, b)
                if a[1] ~= b[1] then
                    return a[1] > b[1]
                end
                return a[2] > b[2]
            end)
            for first = 1, #held, CHUNK do
                local chunk = {}
                for j = first, math.min(first + CHUNK - 1, #held) do
                    table.insert(chunk, held[j][2])
                end
                redis.call("lpush", queue_full_name, unpack(chunk))
            end
            requeued = requeued + #held
            redis.call("del", dead_worker_queue_acks)
        end
    end
    redis.call("zrem", heartbeats, dead_worker)
end

for i = 4, #ARGV do
    if string.sub(ARGV[i], -3) ~= ".DQ" then
        local xqueue_full_name = namespace .. ":" .. ARGV[i] .. ".XQ"
        local xqueue_messages = xqueue_full_name .. ".msgs"
        local expired = redis.call("zrangebyscore", xqueue_full_name, 0, timestamp - dead_message_ttl)
        for first = 1, #expired, CHUNK do
            local chunk = {}
            for j = first, math.min(first + CHUNK - 1, #expired) do
                table.insert(chunk, expired[j])
            end
            redis.call("zrem", xqueue_full_name, unpack(chunk))
            redis.call("hdel", xqueue_messages, unpack(chunk))
        end
    end
end

return requeued
