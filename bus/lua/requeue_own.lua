-- Puts messages a worker fetched but will not run (it is shutting down) back at the HEAD of their
-- queue, in the order given.
--
-- keys=[namespace]; args=[queue_name, worker_id, message_id...]
--
-- Dramatiq 2.2.1's brokers/redis/dispatch.lua does the same in its `command == "requeue"` branch
-- with RPUSH, behind whatever was queued meanwhile; this is that branch with LPUSH.

local namespace = KEYS[1]
local queue_name = ARGV[1]
local queue_full_name = namespace .. ":" .. queue_name
local queue_messages = queue_full_name .. ".msgs"
local queue_acks = namespace .. ":__acks__." .. ARGV[2] .. "." .. queue_name

local back = {}
for i = 3, #ARGV do
    local message_id = ARGV[i]
    if redis.call("srem", queue_acks, message_id) > 0 then
        if redis.call("hexists", queue_messages, message_id) > 0 then
            table.insert(back, message_id)
        end
    end
end
-- the last first, so the first given ends at the head
for i = #back, 1, -1 do
    redis.call("lpush", queue_full_name, back[i])
end
return #back
