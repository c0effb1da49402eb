-- Moves a message a worker fetched but cannot run to its queue's dead-letter queue, acknowledged,
-- and records why.
--
-- keys=[namespace, rejections list, rejections counter hash]
-- args=[timestamp, queue_name, worker_id, redis_id or "", body, record (a JSON object), keep, counter field]
-- Returns the message's Redis id, or false when this worker no longer holds it.
--
-- The move is Dramatiq 2.2.1's `command == "nack"` branch of brokers/redis/dispatch.lua (out of the
-- worker's `__acks__` set, into `<queue>.XQ` and `<queue>.XQ.msgs`, out of `<queue>.msgs`), so
-- Dramatiq's maintenance expires it like any dead letter. Dramatiq's fetch returns bodies without
-- their ids, and an undecodable body cannot name its own: the id is then the one in the worker's
-- unacked set whose body is these bytes.

local namespace = KEYS[1]
local timestamp = ARGV[1]
local queue_name = ARGV[2]
local wanted = ARGV[4]
local body = ARGV[5]
local record = ARGV[6]
local keep = tonumber(ARGV[7])

local queue_canonical_name = queue_name
if string.sub(queue_name, -3) == ".DQ" then
    queue_canonical_name = string.sub(queue_name, 1, -4)
end
local queue_acks = namespace .. ":__acks__." .. ARGV[3] .. "." .. queue_name
local queue_messages = namespace .. ":" .. queue_name .. ".msgs"
local xqueue_full_name = namespace .. ":" .. queue_canonical_name .. ".XQ"
local xqueue_messages = xqueue_full_name .. ".msgs"

local message_id = nil
if wanted ~= "" and redis.call("sismember", queue_acks, wanted) == 1 then
    message_id = wanted
else
    for _, candidate in ipairs(redis.call("smembers", queue_acks)) do
        if redis.call("hget", queue_messages, candidate) == body then
            message_id = candidate
            break
        end
    end
end
if not message_id then
    return false
end

local stored = redis.call("hget", queue_messages, message_id) or body
redis.call("srem", queue_acks, message_id)
redis.call("zadd", xqueue_full_name, timestamp, message_id)
redis.call("hset", xqueue_messages, message_id, stored)
redis.call("hdel", queue_messages, message_id)

-- the record names the dead letter's id (record is a JSON object without one)
redis.call("lpush", KEYS[2], '{"redis_id":' .. cjson.encode(message_id) .. "," .. string.sub(record, 2))
redis.call("ltrim", KEYS[2], 0, keep - 1)
redis.call("hincrby", KEYS[3], ARGV[8], 1)
return message_id
