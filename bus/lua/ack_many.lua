-- Acknowledges many messages a worker fetched from one queue, in one call.
--
-- keys=[namespace]; args=[timestamp, queue_name, worker_id, message_id...]
-- Returns how many were still held by that worker (and are now gone).
--
-- Dramatiq 2.2.1's brokers/redis/dispatch.lua acknowledges one message per call (its
-- `command == "ack"` branch: SREM from the worker's `__acks__` set of the queue, then HDEL of the
-- body) and records the worker's heartbeat on every call; this is that branch for each id given,
-- with the same heartbeat.

local namespace = KEYS[1]
local queue_name = ARGV[2]
local worker_id = ARGV[3]
redis.call("zadd", namespace .. ":__heartbeats__", ARGV[1], worker_id)

local queue_acks = namespace .. ":__acks__." .. worker_id .. "." .. queue_name
local queue_messages = namespace .. ":" .. queue_name .. ".msgs"
local acked = 0
for i = 4, #ARGV do
    if redis.call("srem", queue_acks, ARGV[i]) > 0 then
        redis.call("hdel", queue_messages, ARGV[i])
        acked = acked + 1
    end
end
return acked
